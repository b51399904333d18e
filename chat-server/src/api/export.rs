//! `GET /v1/export`: the tenant export ([`chat_core::export`]) over HTTP, streamed.

use bytes::Bytes;
use chat_core::export::ExportOptions;
use hyper::StatusCode;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// Lines gathered into one chunk up to about this many bytes: one write per line would
/// cost a syscall and a chunk header for each ~300-byte row.
const CHUNK_BYTES: usize = 64 * 1024;

/// Lines in flight between the store and the connection: the store waits beyond that,
/// so a slow download holds the export back instead of growing a queue.
const LINES_IN_FLIGHT: usize = 256;

/// `GET /v1/export` (admins): the answer begins once the store has sent its header line,
/// so a refusal is an error status and not a 200 with a cut body; after that a failure
/// cuts the transfer (the file then has no end line, and an import refuses it).
pub async fn export(ctx: Ctx) -> Result<Resp, ApiError> {
    let actor = ctx.actor()?.clone();
    let engine = ctx.app.engine.clone();
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(LINES_IN_FLIGHT);
    let mut exporting = tokio::spawn(async move {
        engine
            .export_tenant(
                &actor,
                ExportOptions {
                    secrets: false,
                    ..Default::default()
                },
                lines_tx,
            )
            .await
    });
    let task_failed = |e: tokio::task::JoinError| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("export task failed: {e}"),
        )
    };
    // Whether the store finished before the first line was taken (a small tenant fits in
    // the channel): a JoinHandle is awaited once.
    let mut finished = false;
    let first = tokio::select! {
        line = lines.recv() => line,
        done = &mut exporting => {
            // A refusal (403) or a failure comes back as the answer's status.
            done.map_err(task_failed)??;
            finished = true;
            lines.recv().await
        }
    };
    let Some(first) = first else {
        if finished {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the export ended before its header",
            ));
        }
        // The sender is gone with nothing sent: the task's result says why.
        exporting.await.map_err(task_failed)??;
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the export ended before its header",
        ));
    };
    let (chunks_tx, chunks) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let mut chunk = String::with_capacity(CHUNK_BYTES);
        let mut next = Some(first);
        while let Some(line) = next {
            chunk.push_str(&line);
            chunk.push('\n');
            // Take what is ready without waiting; send when the chunk is full or the
            // store has nothing more yet.
            next = match lines.try_recv() {
                Ok(line) if chunk.len() < CHUNK_BYTES => Some(line),
                Ok(line) => {
                    if chunks_tx
                        .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                        .await
                        .is_err()
                    {
                        return; // the client hung up: dropping `lines` stops the store
                    }
                    Some(line)
                }
                Err(_) => {
                    if chunks_tx
                        .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    lines.recv().await
                }
            };
        }
        // The store is done: a failure cuts the transfer instead of ending it cleanly.
        if finished {
            return;
        }
        let failed = match exporting.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            tracing::warn!(error = %why, "tenant export failed midway");
            let _ = chunks_tx.send(Err(std::io::Error::other(why))).await;
        }
    });
    let mut response = http::streamed(StatusCode::OK, "application/x-ndjson", chunks);
    response.headers_mut().insert(
        hyper::header::CONTENT_DISPOSITION,
        hyper::header::HeaderValue::from_static("attachment; filename=\"export.jsonl\""),
    );
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
