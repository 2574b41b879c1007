//! Span fields for the JSON log format, written straight into the span's
//! buffer. tracing-subscriber's `JsonFields` gathers them into a map of
//! owned values and then serialises it: several allocations for the span
//! every request opens, whether or not anything is logged inside it.
//!
//! The output is what `JsonFields` gives (a JSON object, `r#` prefixes
//! dropped), which the JSON event format parses back when it logs the span.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{Format, Json, Writer};

/// The JSON log layer: one line per event, its fields at the top level, and
/// the spans it is in.
pub fn json_layer<S>() -> tracing_subscriber::fmt::Layer<S, DirectJsonFields, Format<Json>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(false).fmt_fields(DirectJsonFields)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DirectJsonFields;

impl<'writer> FormatFields<'writer> for DirectJsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        let mut visitor = FieldWriter { out: &mut writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result?;
        writer.write_char('}')
    }

    /// Fields recorded later go inside the object, before its closing brace.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        if current.fields.pop() != Some('}') {
            return Err(fmt::Error);
        }
        let first = current.fields.ends_with('{');
        let mut visitor = FieldWriter { out: &mut current.fields, first, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result?;
        current.fields.push('}');
        Ok(())
    }
}

/// Writes `"name":value` pairs, comma-separated.
struct FieldWriter<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: Write> FieldWriter<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.write(field, value);
        }
    }

    fn write(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) -> fmt::Result {
        if !self.first {
            self.out.write_char(',')?;
        }
        self.first = false;
        let name = field.name();
        write_string(self.out, format_args!("{}", name.strip_prefix("r#").unwrap_or(name)))?;
        self.out.write_char(':')?;
        value(self.out)
    }
}

impl<W: Write> Visit for FieldWriter<'_, W> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| write_string(out, format_args!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, format_args!("{value}")));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| out.write_str("null"));
        }
    }
}

/// `text` as a JSON string.
fn write_string(out: &mut impl Write, text: fmt::Arguments<'_>) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_fmt(text)?;
    out.write_char('"')
}

/// Escapes what JSON strings may not hold as is.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (at, c) in text.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", u32::from(c))?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = at + c.len_utf8();
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_read_back_as_the_json_format_logs_them() {
        let lines = Lines::default();
        let writer = lines.clone();
        let layer = json_layer().with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let tricky = "a \"quoted\" \\ path\n\twith\u{1} control";
            let span = tracing::info_span!("request", method = %"POST", path = tricky, r#type = 7_u64, late = tracing::field::Empty);
            span.record("late", true);
            span.in_scope(|| tracing::info!(ratio = 0.5, "inside"));
        });
        let logged = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        let event: serde_json::Value = serde_json::from_str(logged.trim()).expect("one JSON line");
        let span = &event["spans"][0];
        assert_eq!(span["name"], "request");
        assert_eq!(span["method"], "POST");
        assert_eq!(span["path"], "a \"quoted\" \\ path\n\twith\u{1} control");
        assert_eq!(span["type"], 7);
        assert_eq!(span["late"], true, "a field recorded later is kept");
        assert_eq!(event["ratio"], 0.5);
    }
}
