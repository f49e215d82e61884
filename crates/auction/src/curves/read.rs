//! Typed deserialization of a curves document straight into [`MtuSteps`].
//!
//! The visitors here accept what `serde_json::from_value` into the derived input structs
//! accepted (`FileInput`, `MtuInput`, `ClearingStep`), with the same messages: objects, or
//! arrays of the fields in order; `null` for an optional field; unknown fields refused at the
//! document and MTU level and ignored in a step; a repeated key's last value taken. A step's id
//! and record id go straight into their MTU's strings, with no allocation of their own.
//!
//! A [`Cursor`] follows where the reader is, so an error names its field
//! (`mtus[2].steps[7].price: must be a decimal number, got true at line 1 column 80`).

use std::cell::Cell;
use std::fmt;
use std::io;

use energy_core::market::{Market, Side};
use energy_core::money::{Lots, PriceCents};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::decimal::Decimal;
use super::{InputError, MtuSteps, ReadError, Step};
use crate::clearing::Limits;

/// The document as given, before the choice between its forms.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Document {
    pub market: Option<Market>,
    pub limits: Option<Limits>,
    pub mtus: Option<Vec<MtuSteps>>,
    pub mtu: Option<String>,
    pub steps: Option<MtuSteps>,
}

pub(super) fn from_slice(input: &[u8]) -> Result<Document, InputError> {
    match read(serde_json::Deserializer::from_slice(input)) {
        Ok(document) => Ok(document),
        Err(ReadError::Input(e)) => Err(e),
        // Memory does not fail to read.
        Err(ReadError::Io(e)) => Err(InputError(e.to_string())),
    }
}

pub(super) fn from_reader<R: io::Read>(input: R) -> Result<Document, ReadError> {
    let input = io::BufReader::with_capacity(1 << 16, input);
    read(serde_json::Deserializer::from_reader(input))
}

fn read<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<Document, ReadError> {
    let cursor = Cursor::default();
    DocumentSeed(&cursor)
        .deserialize(&mut de)
        .and_then(|document| de.end().map(|()| document))
        .map_err(|e| error(e, &cursor))
}

fn error(e: serde_json::Error, cursor: &Cursor) -> ReadError {
    match e.classify() {
        Category::Io => ReadError::Io(e.into()),
        Category::Syntax | Category::Eof => InputError(format!("not valid JSON: {e}")).into(),
        Category::Data => {
            let path = cursor.path();
            if path.is_empty() {
                InputError(e.to_string()).into()
            } else {
                InputError(format!("{path}: {e}")).into()
            }
        }
    }
}

/// Where the reader is: MTU, step and field, each while it is being read. A single-MTU
/// document's steps are `mtus[0]`'s, as in the checks that follow reading.
#[derive(Default)]
struct Cursor {
    mtu: Cell<Option<usize>>,
    step: Cell<Option<usize>>,
    field: Cell<Option<&'static str>>,
}

impl Cursor {
    fn path(&self) -> String {
        let mut path = String::new();
        if let Some(i) = self.mtu.get() {
            path.push_str(&format!("mtus[{i}]"));
        }
        if let Some(k) = self.step.get() {
            path.push_str(&format!(".steps[{k}]"));
        }
        if let Some(field) = self.field.get() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
        path
    }

    /// Reads one field's value with the cursor on it, and leaves it there on an error.
    fn field<T, E>(&self, name: &'static str, read: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.field.set(Some(name));
        let value = read()?;
        self.field.set(None);
        Ok(value)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum DocumentField {
    Market,
    Limits,
    Mtus,
    Mtu,
    Steps,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum MtuField {
    Mtu,
    Steps,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum StepField {
    Id,
    Side,
    Price,
    Quantity,
    Receipt,
    RecordId,
    #[serde(other)]
    Other,
}

/// The whole document: an object, or a bare array of MTUs.
struct DocumentSeed<'c>(&'c Cursor);

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = Document;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Document, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct FileInput")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Document, A::Error> {
        Ok(Document {
            mtus: Some(MtusSeed(self.0).visit_seq(seq)?),
            ..Document::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let at = self.0;
        let mut document = Document::default();
        while let Some(key) = map.next_key::<DocumentField>()? {
            match key {
                DocumentField::Market => {
                    document.market = at.field("market", || map.next_value())?;
                }
                DocumentField::Limits => {
                    document.limits = at.field("limits", || map.next_value())?;
                }
                DocumentField::Mtu => document.mtu = at.field("mtu", || map.next_value())?,
                DocumentField::Mtus => {
                    document.mtus =
                        at.field("mtus", || map.next_value_seed(Nullable(MtusSeed(at))))?;
                }
                DocumentField::Steps => {
                    at.mtu.set(Some(0));
                    let steps = at.field("steps", || {
                        map.next_value_seed(Nullable(StepsSeed {
                            at,
                            into: MtuSteps::default(),
                        }))
                    })?;
                    at.mtu.set(None);
                    document.steps = steps;
                }
            }
        }
        Ok(document)
    }
}

/// `null` for `None`, or what the inner seed reads.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("option")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// An array of MTUs.
struct MtusSeed<'c>(&'c Cursor);

impl<'de> DeserializeSeed<'de> for MtusSeed<'_> {
    type Value = Vec<MtuSteps>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MtusSeed<'_> {
    type Value = Vec<MtuSteps>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let at = self.0;
        let outer_field = at.field.take();
        let mut mtus = Vec::new();
        loop {
            at.mtu.set(Some(mtus.len()));
            match seq.next_element_seed(MtuSeed(at))? {
                Some(m) => mtus.push(m),
                None => break,
            }
        }
        at.mtu.set(None);
        at.field.set(outer_field);
        Ok(mtus)
    }
}

/// One MTU: `{"mtu", "steps"}` or `[mtu, steps]`.
struct MtuSeed<'c>(&'c Cursor);

impl<'de> DeserializeSeed<'de> for MtuSeed<'_> {
    type Value = MtuSteps;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MtuSteps, D::Error> {
        d.deserialize_struct("MtuInput", &["mtu", "steps"], self)
    }
}

impl<'de> Visitor<'de> for MtuSeed<'_> {
    type Value = MtuSteps;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct MtuInput")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MtuSteps, A::Error> {
        let at = self.0;
        let mtu = at.field("mtu", || seq.next_element::<Option<String>>())?;
        let steps = at.field("steps", || {
            seq.next_element_seed(StepsSeed {
                at,
                into: MtuSteps::default(),
            })
        })?;
        match steps {
            Some(steps) => Ok(MtuSteps {
                mtu: mtu.flatten(),
                ..steps
            }),
            None => Err(de::Error::invalid_length(
                1,
                &"struct MtuInput with 2 elements",
            )),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MtuSteps, A::Error> {
        let at = self.0;
        let mut mtu = None;
        let mut steps = None;
        while let Some(key) = map.next_key::<MtuField>()? {
            match key {
                MtuField::Mtu => mtu = at.field("mtu", || map.next_value())?,
                MtuField::Steps => {
                    let into = steps.take().unwrap_or_default();
                    steps =
                        Some(at.field("steps", || map.next_value_seed(StepsSeed { at, into }))?);
                }
            }
        }
        match steps {
            Some(steps) => Ok(MtuSteps { mtu, ..steps }),
            None => Err(de::Error::missing_field("steps")),
        }
    }
}

/// An MTU's array of steps, read into `into` (emptied first: a repeated key's last value counts).
struct StepsSeed<'c> {
    at: &'c Cursor,
    into: MtuSteps,
}

impl<'de> DeserializeSeed<'de> for StepsSeed<'_> {
    type Value = MtuSteps;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MtuSteps, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StepsSeed<'_> {
    type Value = MtuSteps;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MtuSteps, A::Error> {
        let StepsSeed { at, mut into } = self;
        into.steps.clear();
        into.ids.clear();
        into.record_ids.clear();
        let outer_field = at.field.take();
        loop {
            at.step.set(Some(into.steps.len()));
            let step = seq.next_element_seed(StepSeed {
                at,
                into: &mut into,
            })?;
            let Some(step) = step else { break };
            // The engine numbers an MTU's steps with u32.
            if into.steps.len() >= u32::MAX as usize {
                return Err(de::Error::custom(format!(
                    "more than {} steps in one MTU",
                    u32::MAX
                )));
            }
            into.steps.push(step);
        }
        at.step.set(None);
        at.field.set(outer_field);
        Ok(into)
    }
}

/// One step: its numbers come back, its id and record id go onto the MTU's strings.
struct StepSeed<'c, 'm> {
    at: &'c Cursor,
    into: &'m mut MtuSteps,
}

const STEP_FIELDS: &[&str] = &["id", "side", "price", "quantity", "receipt", "record_id"];

impl<'de> DeserializeSeed<'de> for StepSeed<'_, '_> {
    type Value = Step;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Step, D::Error> {
        d.deserialize_struct("ClearingStep", STEP_FIELDS, self)
    }
}

impl StepSeed<'_, '_> {
    /// The step with its texts' ends, once its id and record id are on the strings.
    fn step<E: de::Error>(
        &self,
        side: Side,
        price: i64,
        quantity: i64,
        receipt: u64,
    ) -> Result<Step, E> {
        let end = |text: &String| {
            u32::try_from(text.len())
                .map_err(|_| E::custom("the ids of one MTU take more than 4 GiB"))
        };
        Ok(Step {
            price: PriceCents(price),
            quantity: Lots(quantity),
            receipt,
            id_end: end(&self.into.ids)?,
            record_id_end: end(&self.into.record_ids)?,
            side,
        })
    }
}

impl<'de> Visitor<'de> for StepSeed<'_, '_> {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ClearingStep")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Step, A::Error> {
        let at = self.at;
        let missing = |k| de::Error::invalid_length(k, &"struct ClearingStep with 6 elements");
        let id = at.field("id", || seq.next_element_seed(Text(&mut self.into.ids)))?;
        id.ok_or_else(|| missing(0))?;
        let side = at.field("side", || seq.next_element::<Side>())?;
        let side = side.ok_or_else(|| missing(1))?;
        let price = at.field("price", || {
            seq.next_element_seed(Decimal(PriceCents::PLACES))
        })?;
        let price = price.ok_or_else(|| missing(2))?;
        let quantity = at.field("quantity", || seq.next_element_seed(Decimal(Lots::PLACES)))?;
        let quantity = quantity.ok_or_else(|| missing(3))?;
        let receipt = at.field("receipt", || seq.next_element::<u64>())?;
        if receipt.is_some() {
            at.field("record_id", || {
                seq.next_element_seed(Text(&mut self.into.record_ids))
            })?;
        }
        self.step(side, price, quantity, receipt.unwrap_or(0))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let at = self.at;
        let id_start = self.into.ids.len();
        let record_id_start = self.into.record_ids.len();
        let mut id = false;
        let (mut side, mut price, mut quantity, mut receipt) = (None, None, None, None);
        while let Some(key) = map.next_key::<StepField>()? {
            match key {
                StepField::Id => {
                    self.into.ids.truncate(id_start);
                    at.field("id", || map.next_value_seed(Text(&mut self.into.ids)))?;
                    id = true;
                }
                StepField::Side => side = Some(at.field("side", || map.next_value::<Side>())?),
                StepField::Price => {
                    let seed = Decimal(PriceCents::PLACES);
                    price = Some(at.field("price", || map.next_value_seed(seed))?);
                }
                StepField::Quantity => {
                    let seed = Decimal(Lots::PLACES);
                    quantity = Some(at.field("quantity", || map.next_value_seed(seed))?);
                }
                StepField::Receipt => {
                    receipt = Some(at.field("receipt", || map.next_value::<u64>())?);
                }
                StepField::RecordId => {
                    self.into.record_ids.truncate(record_id_start);
                    at.field("record_id", || {
                        map.next_value_seed(Text(&mut self.into.record_ids))
                    })?;
                }
                StepField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !id {
            return Err(de::Error::missing_field("id"));
        }
        let side = side.ok_or_else(|| de::Error::missing_field("side"))?;
        let price = price.ok_or_else(|| de::Error::missing_field("price"))?;
        let quantity = quantity.ok_or_else(|| de::Error::missing_field("quantity"))?;
        self.step(side, price, quantity, receipt.unwrap_or(0))
    }
}

/// A string, appended to the one given.
struct Text<'s>(&'s mut String);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}
