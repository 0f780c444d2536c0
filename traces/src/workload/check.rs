//! The replay of a workload on the [`Model`]: every session well formed, every command valid for
//! the state at that point and expecting the model's answer.

use super::model::{Model, ModelError, SessionState};
use super::steps::{Expect, Workload};
use crate::trace::CommandName;

/// A session, replaying or generating, failed the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A setup step the model refuses.
    #[error("setup step {step}: {source}")]
    Setup { step: usize, source: ModelError },
    /// A command the model refuses.
    #[error("session {session}, command {command}: {source}")]
    Step {
        session: usize,
        command: usize,
        source: ModelError,
    },
    /// A command whose expected answer is not the model's.
    #[error(
        "session {session}, command {command}: expects {expected:?}, the model answers {model:?}"
    )]
    Expect {
        session: usize,
        command: usize,
        expected: Expect,
        model: Expect,
    },
    /// A session whose first command is not LOGIN, or whose `ends_with_logout` is wrong.
    #[error("session {session}: {reason}")]
    Shape {
        session: usize,
        reason: &'static str,
    },
}

impl Workload {
    /// The model after the setup.
    pub fn setup_model(&self) -> Result<Model, CheckError> {
        let mut model = Model::new(self.users.len());
        for (i, s) in self.setup.iter().enumerate() {
            model
                .apply_setup(s)
                .map_err(|source| CheckError::Setup { step: i, source })?;
        }
        Ok(model)
    }

    /// Replays the setup and the sessions, in order, on the [`Model`]: every session starts
    /// with LOGIN and ends with LOGOUT exactly when it says so, every command is valid for the
    /// state at that point (every sequence number and UID it names exists, CHANGEDSINCE is at
    /// most HIGHESTMODSEQ, selected-state commands follow a SELECT or EXAMINE), and expects the
    /// model's answer. Returns the final model.
    pub fn check(&self) -> Result<Model, CheckError> {
        let mut model = self.setup_model()?;
        for (si, session) in self.sessions.iter().enumerate() {
            if session.commands.first().map(|s| s.name) != Some(CommandName::Login) {
                return Err(CheckError::Shape {
                    session: si,
                    reason: "does not start with LOGIN",
                });
            }
            let last_is_logout =
                session.commands.last().map(|s| s.name) == Some(CommandName::Logout);
            if last_is_logout != session.ends_with_logout {
                return Err(CheckError::Shape {
                    session: si,
                    reason: "ends_with_logout disagrees with its last command",
                });
            }
            let mut state = SessionState::new(session.user);
            for (ci, step) in session.commands.iter().enumerate() {
                let answer = model
                    .apply(&mut state, step)
                    .map_err(|source| CheckError::Step {
                        session: si,
                        command: ci,
                        source,
                    })?;
                if answer != step.expect {
                    return Err(CheckError::Expect {
                        session: si,
                        command: ci,
                        expected: step.expect,
                        model: answer,
                    });
                }
            }
        }
        Ok(model)
    }
}
