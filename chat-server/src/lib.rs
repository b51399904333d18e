//! HTTP and WebSocket server for the chat engine. The API arrives with its own issue;
//! until then this crate only reserves the name in the workspace.
