//! Routes `tracing` events into Samba's debug log, so the module and the
//! daemon write where every Samba admin looks, at Samba's levels, honouring
//! `log level` (also when it changes at runtime through `smbcontrol`).
//!
//! Level map (issue 2): error→0, warn→1, info→3 (DBG_NOTICE), debug→5
//! (DBG_INFO), trace→10 (DBG_DEBUG).

use crate::ffi::debug;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// The Samba debug level a `tracing` level is written at.
pub fn samba_level(level: &Level) -> i32 {
    match *level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 3,
        Level::DEBUG => 5,
        Level::TRACE => 10,
    }
}

/// Formats an event as one line: `dfsr: message key=value …`.
pub fn format_event(event: &Event<'_>) -> String {
    let mut v = LineVisitor::default();
    event.record(&mut v);
    let mut line = String::from("dfsr: ");
    line.push_str(&v.message);
    line.push_str(&v.fields);
    line
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// A `tracing` subscriber whose only sink is Samba's debug system.
/// Spans are accepted (so instrumented code works) but not printed.
pub struct SambaDebugSubscriber {
    next_span: AtomicU64,
}

impl SambaDebugSubscriber {
    pub fn new() -> Self {
        SambaDebugSubscriber { next_span: AtomicU64::new(1) }
    }
}

impl Default for SambaDebugSubscriber {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscriber for SambaDebugSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at runtime, so ask `enabled` every time.
        Interest::sometimes()
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        debug::level() >= samba_level(metadata.level())
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let location = match (meta.file(), meta.line()) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            _ => meta.target().to_string(),
        };
        debug::write(samba_level(meta.level()), &location, meta.target(), &format_event(event));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the bridge as the process-wide subscriber. Idempotent: a second
/// call (a module loaded again in the same process) keeps the first.
pub fn install() {
    let _ = tracing::subscriber::set_global_default(SambaDebugSubscriber::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn levels_follow_samba_conventions() {
        assert_eq!(samba_level(&Level::ERROR), 0);
        assert_eq!(samba_level(&Level::WARN), 1);
        assert_eq!(samba_level(&Level::INFO), 3);
        assert_eq!(samba_level(&Level::DEBUG), 5);
        assert_eq!(samba_level(&Level::TRACE), 10);
    }

    /// A subscriber that keeps the formatted lines, to check the format.
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            self.0.lock().unwrap().push(format_event(e));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn event_line_carries_module_message_and_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(lines.clone()), || {
            tracing::info!(share = "data", n = 3, "connect");
        });
        assert_eq!(lines.lock().unwrap().as_slice(), ["dfsr: connect share=\"data\" n=3"]);
    }
}
