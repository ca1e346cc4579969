//! `ask`: a call to a local actor with a reply port, and what its failures mean to the
//! caller.

use crate::error::OpError;

/// Sends `msg` built with a reply port and waits for the answer.
pub async fn ask<M, T>(
    actor: &ractor::ActorRef<M>,
    build: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
) -> Result<T, OpError>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor
        .call(build, Some(std::time::Duration::from_secs(60)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        Ok(ractor::rpc::CallResult::Timeout) => Err(OpError::Unavailable(
            "the actor did not answer in time".into(),
        )),
        // the actor stopped with the message unhandled (its user moved to another node,
        // see `Router::release_moved_actors`): nothing was done, and the caller may go
        // again
        Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(OpError::Moved(
            "the actor stopped before handling the call".into(),
        )),
    }
}
