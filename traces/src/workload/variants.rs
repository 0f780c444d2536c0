//! The variant pool (the recorded log's distinct commands, by name) and where each selected-state
//! variant goes in a mailbox visit.

use std::collections::BTreeMap;

use imap_types::command::{CommandBody, FetchModifier};
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};

use crate::trace::{self, CommandName, TraceCommand, TraceLine};

/// The recorded log's distinct commands, by name, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariantPool {
    by_name: BTreeMap<CommandName, Vec<TraceLine>>,
}

impl VariantPool {
    /// The embedded log's 240 lines.
    pub fn recorded() -> Self {
        let mut by_name: BTreeMap<CommandName, Vec<TraceLine>> = BTreeMap::new();
        for line in trace::recorded() {
            by_name.entry(line.name).or_default().push(line);
        }
        Self { by_name }
    }

    /// The variants of `name` (none for names the log does not hold).
    pub fn variants(&self, name: CommandName) -> &[TraceLine] {
        self.by_name.get(&name).map_or(&[], Vec::as_slice)
    }
}

/// Where a selected-state variant goes in a visit: flag/CHANGEDSINCE sync first, then SEARCH,
/// header fetches, body fetches, STORE, MOVE, EXPUNGE, and NOOP/CHECK/IDLE last.
pub(crate) fn visit_phase(line: &TraceLine) -> u8 {
    let TraceCommand::Codec(c) = &line.command else {
        return 60;
    };
    match &c.body {
        CommandBody::Fetch {
            macro_or_item_names,
            modifiers,
            ..
        } => {
            if modifiers
                .iter()
                .any(|m| matches!(m, FetchModifier::ChangedSince(_)))
            {
                return 0;
            }
            let MacroOrMessageDataItemNames::MessageDataItemNames(items) = macro_or_item_names
            else {
                return 20;
            };
            let sync = items.iter().all(|i| {
                matches!(
                    i,
                    MessageDataItemName::Uid
                        | MessageDataItemName::Flags
                        | MessageDataItemName::ModSeq
                )
            });
            let body = items.iter().any(|i| match i {
                MessageDataItemName::BodyExt { section, .. } => matches!(
                    section,
                    None | Some(Section::Text(_) | Section::Part(_) | Section::Mime(_))
                ),
                MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Text
                | MessageDataItemName::Binary { .. } => true,
                _ => false,
            });
            if sync {
                0
            } else if body {
                30
            } else {
                20
            }
        }
        CommandBody::Search { .. } => 10,
        CommandBody::Store { .. } => 40,
        CommandBody::Move { .. } => 50,
        CommandBody::Expunge | CommandBody::ExpungeUid { .. } => 55,
        _ => 60,
    }
}
