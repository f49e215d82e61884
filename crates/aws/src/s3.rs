//! `ResultStore` over S3: JSON objects, server-side encrypted, under the order's deterministic key.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use energy_core::ports::{PortError, ResultStore};

use crate::error::sdk_error;

#[derive(Debug, Clone)]
pub struct S3Results {
    client: Client,
    bucket: String,
}

impl S3Results {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Results {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl ResultStore for S3Results {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| sdk_error("result bucket", e))?;
        Ok(())
    }
}
