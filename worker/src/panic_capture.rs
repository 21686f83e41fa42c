//! Turns a task's panic into text for the parent: its message, where it
//! happened, and a backtrace.
//!
//! A panic hook (installed once per process, by the first call) records what
//! it sees in a thread-local while a task runs, instead of printing it;
//! outside a task it hands over to the hook that was there before.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::PanicHookInfo;
use std::sync::Once;

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Marks this thread as running a task until dropped. Scopes nest (a call
/// guards decoding, running and encoding; the task's own run is guarded
/// again), and dropping one restores what was there before.
pub(crate) struct TaskScope {
    was_in_task: bool,
}

impl TaskScope {
    pub(crate) fn enter() -> Self {
        let was_in_task = IN_TASK.with(|t| t.replace(true));
        if !was_in_task {
            // A panic the task caught itself left its record behind; it must
            // not be taken for the next panic's.
            CAPTURED.with(|c| c.borrow_mut().take());
        }
        Self { was_in_task }
    }
}

impl Drop for TaskScope {
    fn drop(&mut self) {
        IN_TASK.with(|t| t.set(self.was_in_task));
    }
}

/// Installs the capturing hook, once per process.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if IN_TASK.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let backtrace = Backtrace::force_capture().to_string();
                CAPTURED.with(|c| *c.borrow_mut() = Some((location, backtrace)));
            } else {
                previous(info);
            }
        }));
    });
}

/// The message of a caught panic and the backtrace text the hook recorded.
pub(crate) fn take(payload: &(dyn Any + Send), task: &str) -> (String, Option<String>) {
    let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    match CAPTURED.with(|c| c.borrow_mut().take()) {
        Some((location, backtrace)) if !location.is_empty() => (
            format!("task `{task}` panicked at {location}: {text}"),
            Some(backtrace),
        ),
        Some((_, backtrace)) => (format!("task `{task}` panicked: {text}"), Some(backtrace)),
        None => (format!("task `{task}` panicked: {text}"), None),
    }
}
