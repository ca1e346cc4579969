//! The server lifecycle as an explicit state machine: which requests are accepted in
//! which phase, and what they lead to. Pure; the server actor carries out the effects.

use galilean_proto::records::ServerPhase;

/// Something that happens to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    StartRequested,
    StopRequested,
    SpawnSucceeded,
    SpawnFailed,
    StopFinished,
}

/// What the actor must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Launch a spawn (phase becomes `Starting`).
    BeginSpawn,
    /// A start is already under way: report it (202).
    AlreadyStarting,
    /// Stop the process (phase becomes `Stopping`), cancelling a spawn in flight.
    BeginStop,
    /// A stop is already under way.
    AlreadyStopping,
    /// Nothing runs; nothing to do (204).
    AlreadyStopped,
    /// Mark running (route added).
    MarkRunning,
    /// Clean up after a failed spawn (phase becomes `Stopped`, failure kept).
    MarkFailed,
    /// Clean up after a stop.
    MarkStopped,
    /// Ignore a stale internal event.
    Ignore,
}

/// A refused request, with JupyterHub's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AlreadyRunning,
    PendingStop,
}

/// The transition function.
pub fn transition(phase: ServerPhase, event: Event) -> Result<(ServerPhase, Effect), Refusal> {
    use Effect::*;
    use Event::*;
    use ServerPhase::*;
    Ok(match (phase, event) {
        (Stopped, StartRequested) => (Starting, BeginSpawn),
        (Starting, StartRequested) => (Starting, AlreadyStarting),
        (Running, StartRequested) => return Err(Refusal::AlreadyRunning),
        (Stopping, StartRequested) => return Err(Refusal::PendingStop),
        (Stopped, StopRequested) => (Stopped, AlreadyStopped),
        (Starting | Running, StopRequested) => (Stopping, BeginStop),
        (Stopping, StopRequested) => (Stopping, AlreadyStopping),
        (Starting, SpawnSucceeded) => (Running, MarkRunning),
        (Starting, SpawnFailed) => (Stopped, MarkFailed),
        (Stopping, StopFinished) => (Stopped, MarkStopped),
        (p, SpawnSucceeded | SpawnFailed | StopFinished) => (p, Ignore),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect::*;
    use Event::*;
    use ServerPhase::*;

    #[test]
    fn every_phase_and_event() {
        let phases = [Stopped, Starting, Running, Stopping];
        let events = [
            StartRequested,
            StopRequested,
            SpawnSucceeded,
            SpawnFailed,
            StopFinished,
        ];
        for p in phases {
            for e in events {
                // total: never panics, and refusals only for start requests
                match transition(p, e) {
                    Ok(_) => {}
                    Err(_) => assert_eq!(e, StartRequested),
                }
            }
        }
    }

    #[test]
    fn the_happy_path() {
        assert_eq!(
            transition(Stopped, StartRequested),
            Ok((Starting, BeginSpawn))
        );
        assert_eq!(
            transition(Starting, SpawnSucceeded),
            Ok((Running, MarkRunning))
        );
        assert_eq!(
            transition(Running, StopRequested),
            Ok((Stopping, BeginStop))
        );
        assert_eq!(
            transition(Stopping, StopFinished),
            Ok((Stopped, MarkStopped))
        );
    }

    #[test]
    fn refusals_and_idempotence() {
        assert_eq!(
            transition(Running, StartRequested),
            Err(Refusal::AlreadyRunning)
        );
        assert_eq!(
            transition(Stopping, StartRequested),
            Err(Refusal::PendingStop)
        );
        assert_eq!(
            transition(Starting, StartRequested),
            Ok((Starting, AlreadyStarting))
        );
        assert_eq!(
            transition(Stopped, StopRequested),
            Ok((Stopped, AlreadyStopped))
        );
        assert_eq!(
            transition(Starting, StopRequested),
            Ok((Stopping, BeginStop))
        );
        assert_eq!(transition(Starting, SpawnFailed), Ok((Stopped, MarkFailed)));
        // a spawn that finishes after a stop began is ignored
        assert_eq!(transition(Stopping, SpawnSucceeded), Ok((Stopping, Ignore)));
    }
}
