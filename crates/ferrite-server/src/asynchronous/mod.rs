//! Async calls: accepted with a call id, kept in the durable queue, run by
//! the workers of whichever node reserves them.

mod task;
mod worker;

use ferrite_model::{ApiError, Call, CallStatus, ErrorKind, Millis};
use ferrite_queue::{Queue, Task};
use ferrite_store::{CallUpdate, Store};
use tokio::sync::Notify;

pub use task::QueuedCall;
pub use worker::{WorkerSettings, Workers};

/// Record `queued` as a new queued call, then enqueue it. Both are durable
/// when this returns `Ok`, which is when the client may be told the call id.
/// A call that cannot be enqueued is recorded as cancelled, with why.
pub async fn enqueue(
    store: &dyn Store,
    queue: &dyn Queue,
    wake: &Notify,
    queued: &QueuedCall,
    kind: ferrite_model::RouteType,
) -> Result<(), ApiError> {
    let id = &queued.request.call_id;
    let call = Call::new(id, &queued.app, &queued.path, kind, Millis::now());
    store
        .insert_call(&call)
        .await
        .map_err(crate::api::error::store_failure)?;
    let task = Task {
        id: id.clone(),
        payload: queued.encode(),
    };
    if let Err(e) = queue.push(&task).await {
        let message = format!("the call could not be queued: {e}");
        let update = CallUpdate {
            error: Some(&message),
            ..CallUpdate::new(CallStatus::Cancelled, Millis::now().0)
        };
        if let Err(e) = store.update_call(id, &update).await {
            tracing::warn!(call_id = %id, error = %e, "cannot mark an unqueued call as cancelled");
        }
        tracing::warn!(call_id = %id, error = %message, "async call refused");
        return Err(ApiError::new(ErrorKind::Unavailable, message));
    }
    wake.notify_one();
    Ok(())
}
