//! Contract suites: one module per trait, with one public function per line of the
//! trait's `# Behavior` section (in the same order), each checking that one behaviour
//! against the subject it is given. A failure panics with the behaviour that was broken.
//!
//! An adapter's tests run every behaviour as a test of its own, so the first failure does
//! not hide the rest, through one macro per trait:
//! [`session_store_contract!`](crate::session_store_contract),
//! [`blob_store_contract!`](crate::blob_store_contract),
//! [`sandbox_contract!`](crate::sandbox_contract) and
//! [`profile_source_contract!`](crate::profile_source_contract). Each expands to one
//! `#[test]` per behaviour, named after it:
//!
//! ```ignore
//! // A factory: a future evaluated for each test, giving the subject.
//! agent_runtime_api::session_store_contract!(memory, async { MemorySessionStore::new() });
//!
//! // A runner: given each behaviour, it sets up what the subject needs, runs the
//! // behaviour against it, and cleans up (here a database of its own per test).
//! async fn on_a_fresh_database(behaviour: Behaviour<dyn SessionStore>) {
//!     let db = TestDatabase::create().await;
//!     behaviour.check(&*MyStore::connect(db.url()).await.unwrap()).await;
//!     db.drop().await;
//! }
//! agent_runtime_api::session_store_contract!(postgres, with on_a_fresh_database);
//! ```
//!
//! The first name (optional) is a module the tests go in, which sees its parent's items;
//! attributes before it (`#[ignore = "..."]`) go on every test. The tests of every macro
//! in a test binary run on one shared multi-threaded runtime ([`block_on`]), so an
//! adapter with expensive setup (a server, a fake backend) may build it once, keep it in
//! a `static` (e.g. a `tokio::sync::OnceCell`) and hand every test a handle on it.
//!
//! Ids, keys, owner tags and session ids are made unique per call, so behaviours can share
//! a backend with each other and with other runs.

pub mod blob_store;
pub mod profile_source;
pub mod sandbox;
pub mod session_store;

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

pub use blob_store::blob_store;
pub use profile_source::{profile_source, sample_bundles};
pub use sandbox::sandbox_provider;
pub use session_store::{sample_event, sample_key, sample_record, session_store};

/// A future that checks one behaviour, borrowing its subject.
pub type Check<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One behaviour of a contract suite: its name and the check that runs it against a
/// subject (`T` is the trait object, e.g. `dyn SessionStore`).
pub struct Behaviour<T: ?Sized + 'static> {
    name: &'static str,
    check: for<'a> fn(&'a T) -> Check<'a>,
}

impl<T: ?Sized + 'static> Behaviour<T> {
    /// A behaviour named `name`, checked by `check`.
    pub const fn new(name: &'static str, check: for<'a> fn(&'a T) -> Check<'a>) -> Self {
        Behaviour { name, check }
    }

    /// The behaviour's name, which is also its function's and its test's.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Checks the behaviour against `subject`; panics if it is broken.
    pub async fn check(&self, subject: &T) {
        (self.check)(subject).await
    }
}

impl<T: ?Sized + 'static> Clone for Behaviour<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized + 'static> Copy for Behaviour<T> {}

impl<T: ?Sized + 'static> std::fmt::Debug for Behaviour<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Behaviour").field(&self.name).finish()
    }
}

/// What a factory of the contract macros may give: the subject itself, or a pointer to it.
pub trait Subject<T: ?Sized> {
    /// The subject the behaviours run against.
    fn subject(&self) -> &T;
}

macro_rules! subjects {
    ($($trait:ident),*) => {$(
        impl<S: crate::$trait> Subject<dyn crate::$trait> for S {
            fn subject(&self) -> &(dyn crate::$trait + 'static) {
                self
            }
        }
        impl Subject<dyn crate::$trait> for std::sync::Arc<dyn crate::$trait> {
            fn subject(&self) -> &(dyn crate::$trait + 'static) {
                self.as_ref()
            }
        }
        impl Subject<dyn crate::$trait> for Box<dyn crate::$trait> {
            fn subject(&self) -> &(dyn crate::$trait + 'static) {
                self.as_ref()
            }
        }
        impl<S: crate::$trait> Subject<dyn crate::$trait> for std::sync::Arc<S> {
            fn subject(&self) -> &(dyn crate::$trait + 'static) {
                self.as_ref()
            }
        }
    )*};
}

subjects!(SessionStore, BlobStore, SandboxProvider, ProfileSource);

/// Runs `future` to its end on the runtime every contract test of this process shares
/// (multi-threaded, two workers), from the calling thread. The contract macros' tests run
/// through it, so what one test's setup spawns outlives that test.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("contract")
            .build()
            .expect("the contract tests' runtime starts")
    });
    RUNTIME.block_on(future)
}

/// A prefix unique to this process and call, for ids and keys the suites create.
pub fn unique_prefix(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{label}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The machinery of the per-trait contract macros: the list of behaviours as a slice, or
/// one test per behaviour.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract {
    // One behaviour as a `Behaviour<subject>`.
    (@behaviour [$($module:tt)*] [$subject:ty] $behaviour:ident) => {
        $crate::contract::Behaviour::<$subject>::new(
            ::core::stringify!($behaviour),
            |subject| ::std::boxed::Box::pin($($module)*::$behaviour(subject)),
        )
    };
    // One test.
    (@test $module:tt $subject:tt $behaviour:ident [$(#[$attr:meta])*] $runner:expr) => {
        #[test]
        $(#[$attr])*
        fn $behaviour() {
            let behaviour = $crate::__contract!(@behaviour $module $subject $behaviour);
            $crate::contract::block_on(($runner)(behaviour));
        }
    };
    (@tests $module:tt $subject:tt [$($behaviour:ident),* $(,)?] $attrs:tt $runner:expr) => {$(
        $crate::__contract!(@test $module $subject $behaviour $attrs $runner);
    )*};
    // The behaviours as `&'static [Behaviour<subject>]`.
    ($module:tt $subject:tt [$($behaviour:ident),* $(,)?] @list) => {
        &[$($crate::__contract!(@behaviour $module $subject $behaviour)),*]
    };
    ($m:tt [$s:ty] $b:tt $(#[$attr:meta])* with $runner:expr) => {
        $crate::__contract!(@tests $m [$s] $b [$(#[$attr])*] $runner);
    };
    ($m:tt [$s:ty] $b:tt $(#[$attr:meta])* $name:ident, with $runner:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__contract!(@tests $m [$s] $b [$(#[$attr])*] $runner);
        }
    };
    ($m:tt [$s:ty] $b:tt $(#[$attr:meta])* $name:ident, $factory:expr) => {
        $crate::__contract!($m [$s] $b $(#[$attr])* $name, with |behaviour: $crate::contract::Behaviour<$s>| async move {
            let subject = $factory.await;
            behaviour
                .check($crate::contract::Subject::<$s>::subject(&subject))
                .await;
        });
    };
    ($m:tt [$s:ty] $b:tt $(#[$attr:meta])* $factory:expr) => {
        $crate::__contract!($m [$s] $b $(#[$attr])* with |behaviour: $crate::contract::Behaviour<$s>| async move {
            let subject = $factory.await;
            behaviour
                .check($crate::contract::Subject::<$s>::subject(&subject))
                .await;
        });
    };
}
