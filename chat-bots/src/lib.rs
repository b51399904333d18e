#![doc = include_str!("../README.md")]

mod http;
mod llm;
mod openai;
mod signature;
mod sse;
mod webhook;

pub use llm::{
    DEFAULT_HANDOFF_SENTINEL, DEFAULT_SYSTEM_PROMPT, Delta, DeltaCallback, LlmBot, LlmConfig,
    StreamEnd,
};
pub use openai::HANDOFF_TOOL;
pub use signature::{SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, sign, verify_signature};
pub use webhook::{WebhookBot, WebhookConfig};
