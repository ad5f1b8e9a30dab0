//! Per-call resource limits: a memory cap summed over every linear memory of
//! the component, and caps on what a call may return.
use super::bindings::types::{Action, FieldValue, Plan, StatusDecision};
use super::engine::RuntimeConfig;
use super::error::CallError;

/// Returned from the limiter so the trap names its cause.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted})")]
pub struct MemoryLimitExceeded {
    limit: usize,
    wanted: usize,
}

/// Sums memory growth across all memories of one store. wasmtime's own
/// `StoreLimits` caps each memory separately, which a component with several
/// memories could use to exceed the intended budget.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: false,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// True once any growth was refused, even if the guest swallowed the
    /// failure and trapped some other way (e.g. an allocation abort).
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.used.saturating_add(desired.saturating_sub(current));
        if next > self.limit {
            self.exceeded = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                wanted: next,
            }
            .into());
        }
        self.used = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn value_bytes(value: &FieldValue) -> usize {
    match value {
        FieldValue::Text(s) | FieldValue::Time(s) => s.len(),
        FieldValue::Number(_) | FieldValue::Flag(_) | FieldValue::Clear => 8,
    }
}

fn fields_bytes(fields: &[super::bindings::types::CustomField]) -> usize {
    fields
        .iter()
        .map(|f| f.name.len() + value_bytes(&f.value))
        .sum()
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn file_bytes(file: &super::bindings::types::File) -> usize {
    use super::bindings::types::FileSource;
    file.name.len()
        + file.content_type.len()
        + match &file.source {
            FileSource::Url(s) | FileSource::Inline(s) => s.len(),
        }
}

/// Bytes of text an action carries (a cheap, allocation-free measure).
fn action_bytes(action: &Action) -> usize {
    match action {
        Action::CreateCustomer(c) => {
            opt(&c.name)
                + opt(&c.phone)
                + opt(&c.external_id)
                + opt(&c.email)
                + fields_bytes(&c.fields)
        }
        Action::UpdateCustomer(u) => opt(&u.assign_to) + fields_bytes(&u.fields),
        Action::CreateConversation(c) => {
            c.name.len()
                + opt(&c.menu_selection)
                + c.tags.iter().map(String::len).sum::<usize>()
                + fields_bytes(&c.fields)
                + opt(&c.assign_to)
        }
        Action::AddMessage(m) => {
            m.preview.len() + m.meta.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        }
        Action::AttachFile(a) => file_bytes(&a.file) + opt(&a.note),
        Action::SetFields(f) => fields_bytes(f),
        Action::AppendTo(s) | Action::AddNote(s) | Action::Assign(s) | Action::Skip(s) => s.len(),
        Action::SetStatus(_) => 0,
    }
}

pub(crate) fn check_plan(plan: &Plan, config: &RuntimeConfig) -> Result<(), CallError> {
    if plan.actions.len() > config.max_plan_actions {
        return Err(CallError::OutputTooLarge(format!(
            "plan has {} actions; the limit is {}",
            plan.actions.len(),
            config.max_plan_actions
        )));
    }
    let bytes: usize = plan.actions.iter().map(action_bytes).sum();
    if bytes > config.max_output_bytes {
        return Err(CallError::OutputTooLarge(format!(
            "plan carries {bytes} bytes of text; the limit is {}",
            config.max_output_bytes
        )));
    }
    Ok(())
}

pub(crate) fn check_decision(
    decision: &StatusDecision,
    config: &RuntimeConfig,
) -> Result<(), CallError> {
    let bytes = match decision {
        StatusDecision::Apply(t) | StatusDecision::Defer(t) => t.status.len(),
        StatusDecision::Ignore(s) | StatusDecision::Reject(s) => s.len(),
    };
    if bytes > config.max_output_bytes {
        return Err(CallError::OutputTooLarge(format!(
            "status decision carries {bytes} bytes of text; the limit is {}",
            config.max_output_bytes
        )));
    }
    Ok(())
}
