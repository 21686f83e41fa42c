//! The task registry: typed functions behind their names, erased so that one
//! table can dispatch any call.

use procpool_ipc::{
    encode_value, CallKind, CodecError, CodecOp, RemoteError, RemoteErrorKind, Task,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::panic_capture;

/// A task name registered twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateTask {
    /// The name.
    pub name: &'static str,
}

impl fmt::Display for DuplicateTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}` is registered twice", self.name)
    }
}

impl std::error::Error for DuplicateTask {}

/// What an initializer's output says about success.
///
/// Implemented for `()` (an initializer that returns succeeded) and for
/// `Result<T, E>` (`Err` is a failure, reported with `E`'s `Display`). An
/// initializer that panics has failed whatever its output type.
pub trait InitOutput {
    /// `Err(message)` when the initializer failed.
    ///
    /// # Errors
    /// The failure, in words.
    fn check(&self) -> Result<(), String>;
}

impl InitOutput for () {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl<T, E: fmt::Display> InitOutput for Result<T, E> {
    fn check(&self) -> Result<(), String> {
        self.as_ref().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Runs `f` with panics caught and recorded: a panic becomes a `Panicked`
/// error with its message and backtrace.
fn guarded<T>(task: &str, f: impl FnOnce() -> Result<T, RemoteError>) -> Result<T, RemoteError> {
    // Once per process; after that an atomic load. Here rather than only in
    // the serve loop, so that `Registry::call` captures panics on its own too.
    panic_capture::install_hook();
    let _scope = panic_capture::TaskScope::enter();
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let (message, backtrace) = panic_capture::take(&*payload, task);
        Err(RemoteError {
            kind: RemoteErrorKind::Panicked,
            message,
            backtrace,
        })
    })
}

/// One registered function, its types erased.
trait Erased: Send + Sync {
    /// Runs a call; on success the encoded output is appended to `out`.
    fn call(&self, kind: CallKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RemoteError>;

    /// Runs the task as an initializer: `Err` when it failed.
    fn init(&self, payload: &[u8]) -> Result<(), RemoteError>;
}

struct Typed<A, O, F> {
    task: Task<A, O>,
    run: F,
    /// How to read an initializer's output; `None` for a task registered with
    /// [`Registry::register`], whose only failure is a panic.
    init_check: Option<InitCheck<O>>,
}

/// How an initializer's output is judged ([`InitOutput::check`]).
type InitCheck<O> = fn(&O) -> Result<(), String>;

impl<A, O, F> Typed<A, O, F>
where
    A: DeserializeOwned,
    O: Serialize,
    F: Fn(A) -> O,
{
    fn decode(&self, payload: &[u8]) -> Result<A, RemoteError> {
        // `decode_value`, not `Task::decode_args` (which catches panics): a
        // panic in `A`'s `Deserialize` unwinds to the call's guard, which
        // reports it as `Panicked` with its location and backtrace.
        procpool_ipc::decode_value(payload).map_err(|cause| {
            let e = CodecError {
                task: self.task.name().to_owned(),
                op: CodecOp::DecodeArgs,
                type_name: std::any::type_name::<A>(),
                cause,
            };
            RemoteError::new(RemoteErrorKind::ArgsDecode, e.to_string())
        })
    }

    /// Runs the function, turning a panic into a `Panicked` error with its
    /// message and backtrace.
    fn run_one(&self, args: A) -> Result<O, RemoteError> {
        guarded(self.task.name(), || Ok((self.run)(args)))
    }

    /// Runs every element of a batch, as many as possible under one panic
    /// guard: a panic ends the guard at its own element, which gets the
    /// error, and a new guard takes the rest.
    fn run_batch(&self, inputs: Vec<A>) -> Vec<Result<O, RemoteError>> {
        let mut results = Vec::with_capacity(inputs.len());
        let mut inputs = inputs.into_iter();
        while inputs.len() > 0 {
            let ran = guarded(self.task.name(), || {
                for args in inputs.by_ref() {
                    results.push(Ok((self.run)(args)));
                }
                Ok(())
            });
            if let Err(e) = ran {
                // The element that panicked was taken from `inputs` already.
                results.push(Err(e));
            }
        }
        results
    }

    fn encode(&self, output: &O, out: &mut Vec<u8>) -> Result<(), RemoteError> {
        self.task
            .encode_output(output, out)
            .map_err(|e| RemoteError::new(RemoteErrorKind::OutputEncode, e.to_string()))
    }
}

impl<A, O, F> Erased for Typed<A, O, F>
where
    A: DeserializeOwned,
    O: Serialize,
    F: Fn(A) -> O + Send + Sync,
{
    fn call(&self, kind: CallKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RemoteError> {
        match kind {
            CallKind::Single => {
                let output = self.run_one(self.decode(payload)?)?;
                self.encode(&output, out)
            }
            CallKind::Batch => {
                let count = procpool_ipc::batch_len(payload).unwrap_or(0);
                if count > procpool_ipc::MAX_BATCH as u64 {
                    return Err(RemoteError::new(
                        RemoteErrorKind::ArgsDecode,
                        format!(
                            "task `{}`: a batch of {count} elements is over the limit of {}",
                            self.task.name(),
                            procpool_ipc::MAX_BATCH
                        ),
                    ));
                }
                let inputs: Vec<A> = procpool_ipc::decode_value(payload).map_err(|reason| {
                    RemoteError::new(
                        RemoteErrorKind::ArgsDecode,
                        format!(
                            "task `{}`: cannot decode a batch of arguments ({}): {reason}",
                            self.task.name(),
                            std::any::type_name::<Vec<A>>()
                        ),
                    )
                })?;
                let results = self.run_batch(inputs);
                // The whole Vec<Result<O, RemoteError>> in one pass; only when
                // an output refuses to encode, element by element, so that
                // its failure stays its own.
                let mark = out.len();
                if encode_value(&results, out).is_ok() {
                    return Ok(());
                }
                out.truncate(mark);
                let len = results.len() as u64;
                encode_value(&len, out)
                    .map_err(|r| RemoteError::new(RemoteErrorKind::OutputEncode, r.to_string()))?;
                for result in &results {
                    let mark = out.len();
                    let encoded = match result {
                        Ok(output) => encode_value(&Ok::<&O, RemoteError>(output), out),
                        Err(e) => encode_value(&Err::<&O, &RemoteError>(e), out),
                    };
                    if let Err(reason) = encoded {
                        out.truncate(mark);
                        let e = RemoteError::new(
                            RemoteErrorKind::OutputEncode,
                            format!(
                                "task `{}`: cannot encode the output ({}): {reason}",
                                self.task.name(),
                                std::any::type_name::<O>()
                            ),
                        );
                        encode_value(&Err::<&O, RemoteError>(e), out).map_err(|r| {
                            RemoteError::new(RemoteErrorKind::OutputEncode, r.to_string())
                        })?;
                    }
                }
                Ok(())
            }
        }
    }

    fn init(&self, payload: &[u8]) -> Result<(), RemoteError> {
        let output = self.run_one(self.decode(payload)?)?;
        match self.init_check {
            Some(check) => check(&output).map_err(|message| {
                RemoteError::new(
                    RemoteErrorKind::Initializer,
                    format!(
                        "initializer `{}` returned an error: {message}",
                        self.task.name()
                    ),
                )
            }),
            None => Ok(()),
        }
    }
}

/// The tasks a worker can run, by name.
///
/// ```
/// use procpool_worker::{Registry, Task};
/// const SQUARE: Task<u64, u64> = Task::new("square");
/// const GREET: Task<String, String> = Task::new("greet");
///
/// let registry = Registry::new()
///     .with(SQUARE, |x| x * x)
///     .with(GREET, |name| format!("hello, {name}"));
/// assert_eq!(registry.names().count(), 2);
/// ```
#[derive(Default)]
pub struct Registry {
    tasks: HashMap<&'static str, Box<dyn Erased>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `run` as the body of `task`. A task whose output is a
    /// `Result` simply sends the `Result` back; only a panic fails the call.
    ///
    /// # Errors
    /// [`DuplicateTask`] when the name is taken; the registry is unchanged.
    pub fn register<A, O, F>(
        &mut self,
        task: Task<A, O>,
        run: F,
    ) -> Result<&mut Self, DuplicateTask>
    where
        A: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        self.insert(task, run, None)
    }

    /// Registers `run` as the body of `task`, usable as the pool's
    /// initializer: when it runs as one, an `Err` output fails the worker's
    /// start like a panic does. It can also be called as an ordinary task.
    ///
    /// # Errors
    /// [`DuplicateTask`] when the name is taken.
    pub fn register_initializer<A, O, F>(
        &mut self,
        task: Task<A, O>,
        run: F,
    ) -> Result<&mut Self, DuplicateTask>
    where
        A: DeserializeOwned + 'static,
        O: Serialize + InitOutput + 'static,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        self.insert(task, run, Some(|o: &O| o.check()))
    }

    fn insert<A, O, F>(
        &mut self,
        task: Task<A, O>,
        run: F,
        init_check: Option<InitCheck<O>>,
    ) -> Result<&mut Self, DuplicateTask>
    where
        A: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        let name = task.name();
        if self.tasks.contains_key(name) {
            return Err(DuplicateTask { name });
        }
        self.tasks.insert(
            name,
            Box::new(Typed {
                task,
                run,
                init_check,
            }),
        );
        Ok(self)
    }

    /// [`register`](Self::register) for building a registry in one
    /// expression.
    ///
    /// # Panics
    /// When the name is taken: two functions under one name is a bug in the
    /// program, found the first time it starts.
    #[must_use]
    pub fn with<A, O, F>(mut self, task: Task<A, O>, run: F) -> Self
    where
        A: DeserializeOwned + 'static,
        O: Serialize + 'static,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        if let Err(e) = self.register(task, run) {
            panic!("{e}");
        }
        self
    }

    /// [`register_initializer`](Self::register_initializer) in one expression.
    ///
    /// # Panics
    /// When the name is taken.
    #[must_use]
    pub fn with_initializer<A, O, F>(mut self, task: Task<A, O>, run: F) -> Self
    where
        A: DeserializeOwned + 'static,
        O: Serialize + InitOutput + 'static,
        F: Fn(A) -> O + Send + Sync + 'static,
    {
        if let Err(e) = self.register_initializer(task, run) {
            panic!("{e}");
        }
        self
    }

    /// The registered names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// Runs one call of the task called `name`; on success its encoded output
    /// (or, for a batch, the encoded per-element results) is appended to
    /// `out`, which is left as it was on error.
    ///
    /// # Errors
    /// A [`RemoteError`] of kind `UnknownTask`, `ArgsDecode`, `Panicked` or
    /// `OutputEncode`.
    pub fn call(
        &self,
        name: &str,
        kind: CallKind,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RemoteError> {
        let task = self.lookup(name)?;
        let mark = out.len();
        // Not only the task's body is the program's code: a panic in an
        // argument's `Deserialize`, the output's `Serialize` or a `Drop` fails
        // this call too, and the worker serves on.
        guarded(name, || task.call(kind, payload, out)).inspect_err(|_| out.truncate(mark))
    }

    /// Runs the task called `name` as an initializer.
    ///
    /// # Errors
    /// A [`RemoteError`]: unknown task, undecodable arguments, a panic, or an
    /// `Err` output of a task registered with `register_initializer`.
    pub fn initialize(&self, name: &str, payload: &[u8]) -> Result<(), RemoteError> {
        let task = self.lookup(name)?;
        guarded(name, || task.init(payload))
    }

    fn lookup(&self, name: &str) -> Result<&dyn Erased, RemoteError> {
        self.tasks.get(name).map(|t| &**t).ok_or_else(|| {
            let mut known: Vec<_> = self.names().collect();
            known.sort_unstable();
            RemoteError::new(
                RemoteErrorKind::UnknownTask,
                format!(
                    "no task `{name}` in this worker (it has: {})",
                    known.join(", ")
                ),
            )
        })
    }
}
