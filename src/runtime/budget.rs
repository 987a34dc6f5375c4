//! Budgets: the limits a session is created with (the profile's, or tighter ones of the
//! client's) and the refusal a session gets once its usage reached one. The usage itself
//! is the runtime's own count of the session's turns (`actor::output`), never a line's
//! word alone.

use agent_runtime_api::{Budget, SessionRecord};

use crate::error::{ErrorCode, RuntimeError};

/// The budget of a new session: the profile's, with each limit the client asked for in
/// its place. A limit may only be tightened: one above the profile's is `invalid_request`
/// naming the field; where the profile has no limit, any is fine.
pub(crate) fn for_new_session(
    profile: Budget,
    asked: Option<Budget>,
) -> Result<Budget, RuntimeError> {
    let Some(asked) = asked else {
        return Ok(profile);
    };
    fn within<T: PartialOrd + std::fmt::Display + Copy>(
        field: &str,
        profile: Option<T>,
        asked: Option<T>,
    ) -> Result<Option<T>, RuntimeError> {
        match (profile, asked) {
            (Some(max), Some(asked)) if asked > max => Err(RuntimeError::invalid(format!(
                "budget.{field}: {asked} is above the profile's limit of {max}"
            ))),
            (profile, asked) => Ok(asked.or(profile)),
        }
    }
    Ok(Budget {
        max_cost_usd: within("maxCostUsd", profile.max_cost_usd, asked.max_cost_usd)?,
        max_tokens: within("maxTokens", profile.max_tokens, asked.max_tokens)?,
        max_turns: within("maxTurns", profile.max_turns, asked.max_turns)?,
    })
}

/// `budget_exceeded` for a message to a session whose usage reached a limit of its
/// budget; `None` while it may go on.
pub(crate) fn refusal(record: &SessionRecord) -> Option<RuntimeError> {
    let limit = record.budget.reached(&record.usage)?;
    Some(RuntimeError::new(
        ErrorCode::BudgetExceeded,
        format!(
            "session {} used up its budget ({limit}); an admin must raise it before it takes more messages",
            record.id
        ),
    ))
}

/// What the `budget_exceeded` event says when a turn used up the budget.
pub(crate) fn exceeded_message(limit: &str) -> String {
    format!(
        "the session reached its budget's {limit}; it takes no more messages until an admin raises the budget"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(cost: Option<f64>, tokens: Option<u64>, turns: Option<u64>) -> Budget {
        Budget {
            max_cost_usd: cost,
            max_tokens: tokens,
            max_turns: turns,
        }
    }

    #[test]
    fn a_session_budget_takes_the_profiles_limits_it_does_not_tighten() {
        let profile = budget(Some(1.0), Some(1000), None);
        assert_eq!(for_new_session(profile, None).unwrap(), profile);
        let asked = budget(None, Some(500), Some(3));
        assert_eq!(
            for_new_session(profile, Some(asked)).unwrap(),
            budget(Some(1.0), Some(500), Some(3))
        );
        // At the profile's limit is within it.
        let asked = budget(Some(1.0), Some(1000), None);
        assert_eq!(for_new_session(profile, Some(asked)).unwrap(), profile);
    }

    #[test]
    fn a_session_limit_above_the_profiles_is_refused_naming_the_field() {
        let profile = budget(Some(1.0), Some(1000), Some(5));
        for (asked, field) in [
            (budget(Some(1.5), None, None), "budget.maxCostUsd"),
            (budget(None, Some(1001), None), "budget.maxTokens"),
            (budget(None, None, Some(6)), "budget.maxTurns"),
        ] {
            let error = for_new_session(profile, Some(asked)).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            assert!(error.message.starts_with(field), "{}", error.message);
        }
    }
}
