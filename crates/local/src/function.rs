//! The event-driven functions the local stacks can invoke. Which events go to which function is
//! not written here: it is read from `template.yaml` by [`crate::topology`].

/// The event-driven functions (submit-order is behind the HTTP API, not the bus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    EvaluateOrder,
    StoreResult,
    NotifySlack,
    SweepPending,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::EvaluateOrder,
        Function::StoreResult,
        Function::NotifySlack,
        Function::SweepPending,
    ];

    /// The binary's name, as in the template's `BuildProperties.Binary`.
    pub fn name(self) -> &'static str {
        match self {
            Function::EvaluateOrder => "evaluate-order",
            Function::StoreResult => "store-result",
            Function::NotifySlack => "notify-slack",
            Function::SweepPending => "sweep-pending",
        }
    }

    pub fn from_binary(binary: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == binary)
    }
}
