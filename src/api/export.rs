//! `GET /admin/v1/export`: a consistent snapshot of the store, streamed as
//! JSON lines (`crate::backup::format` has the format).
//!
//! The snapshot is taken (and made durable) before the answer starts, so a
//! store that cannot be read answers a plain 500, never a cut-off 200. The
//! text is then produced a chunk at a time while the client reads: the
//! snapshot's records are in memory, their JSON never whole.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use actix_web::HttpResponse;

use super::error::ApiError;
use super::AppState;
use crate::backup::{ExportLines, CONTENT_TYPE};

/// About how much text goes into one chunk of the answer.
const CHUNK_BYTES: usize = 64 * 1024;

pub async fn export(state: &AppState) -> Result<HttpResponse, ApiError> {
    let snapshot = state.store.snapshot().await?;
    log::info!(
        "exporting {} clusters and {} associations",
        snapshot.clusters.len(),
        snapshot.associations.len()
    );
    let body = Chunks(ExportLines::new(snapshot, &state.identity));
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}

/// The export's lines, gathered into chunks of about [`CHUNK_BYTES`]. Each
/// poll serializes one chunk: a few microseconds of work on the executor.
struct Chunks(ExportLines);

impl MessageBody for Chunks {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        let lines = &mut self.get_mut().0;
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        while chunk.len() < CHUNK_BYTES {
            match lines.next() {
                Some(line) => chunk.extend_from_slice(&line),
                None => break,
            }
        }
        if chunk.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Bytes::from(chunk))))
        }
    }
}
