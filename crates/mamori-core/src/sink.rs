//! Where alerts and incidents go. Every output — a JSON-lines file, standard output, a webhook,
//! metrics, a log shipper — implements [`AlertSink`]; producers never know which ones are there
//! (ripgrep's `Sink`, Vector's sinks).

use std::io::Write;

use serde::Serialize;

use crate::alert::Alert;
use crate::incident::Incident;

/// One line of mamori's output stream: an alert or an incident, tagged by `record`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Output<'a> {
    /// An alert.
    Alert(&'a Alert),
    /// An incident.
    Incident(&'a Incident),
}

/// A sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("{sink}: {source}")]
    Io {
        /// Which sink.
        sink: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The far end refused or could not be reached.
    #[error("{sink}: {message}")]
    Delivery {
        /// Which sink.
        sink: String,
        /// What went wrong.
        message: String,
    },
}

/// A destination for alerts and incidents.
pub trait AlertSink {
    /// Delivers one alert.
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError>;
    /// Delivers one incident (opened, updated or closed); sinks that only care about alerts
    /// ignore it.
    fn incident(&mut self, _incident: &Incident) -> Result<(), SinkError> {
        Ok(())
    }
    /// Pushes out anything buffered (called when a producer pauses or stops).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// JSON lines to any writer: a file, standard output, a pipe. Each record is written with one
/// `write_all` so readers tailing a file never see half a line.
pub struct JsonLines<W: Write> {
    name: String,
    out: W,
    /// Flush after every record (live output; off for batch output).
    flush_each: bool,
}

impl<W: Write> JsonLines<W> {
    /// A sink named `name` (for errors) writing to `out`.
    pub fn new(name: impl Into<String>, out: W, flush_each: bool) -> Self {
        JsonLines {
            name: name.into(),
            out,
            flush_each,
        }
    }

    fn write(&mut self, record: Output<'_>) -> Result<(), SinkError> {
        let io = |name: &str, source| SinkError::Io {
            sink: name.to_string(),
            source,
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| io(&self.name, e.into()))?;
        line.push(b'\n');
        self.out.write_all(&line).map_err(|e| io(&self.name, e))?;
        if self.flush_each {
            self.out.flush().map_err(|e| io(&self.name, e))?;
        }
        Ok(())
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> AlertSink for JsonLines<W> {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.write(Output::Alert(alert))
    }
    fn incident(&mut self, incident: &Incident) -> Result<(), SinkError> {
        self.write(Output::Incident(incident))
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Io {
            sink: self.name.clone(),
            source,
        })
    }
}

/// Several sinks as one. A failing sink does not stop the others: every sink gets every record,
/// and the first error is returned afterwards.
#[derive(Default)]
pub struct Fanout {
    sinks: Vec<Box<dyn AlertSink + Send>>,
}

impl Fanout {
    /// No sinks yet.
    pub fn new() -> Self {
        Fanout::default()
    }
    /// Adds a sink.
    pub fn push(&mut self, sink: Box<dyn AlertSink + Send>) {
        self.sinks.push(sink);
    }
    /// Number of sinks.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }
    /// No sinks at all.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
    fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn AlertSink) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        let mut first = None;
        for s in &mut self.sinks {
            if let Err(e) = f(s.as_mut()) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl AlertSink for Fanout {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.each(|s| s.alert(alert))
    }
    fn incident(&mut self, incident: &Incident) -> Result<(), SinkError> {
        self.each(|s| s.incident(incident))
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.each(|s| s.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Evidence, Severity};
    use crate::subject::Subject;

    fn alert() -> Alert {
        Alert {
            time: crate::time::rfc3339(5),
            time_ns: 5,
            subject: Subject::Device {
                address: "10.0.0.7".into(),
            },
            source: "network".into(),
            detector: "svm".into(),
            model_path: "svm.model".into(),
            score: 1.5,
            threshold: 0.0,
            flagged_units: 1,
            run_start_ns: 5,
            severity: Severity::Warning,
            evidence: Evidence::Traffic {
                entity_kind: "device".into(),
                entity: "10.0.0.7".into(),
                input: "lab.pcap".into(),
                start_ns: 0,
                end_ns: 5,
                packets: 300,
            },
        }
    }

    struct Broken;
    impl AlertSink for Broken {
        fn alert(&mut self, _: &Alert) -> Result<(), SinkError> {
            Err(SinkError::Delivery {
                sink: "broken".into(),
                message: "down".into(),
            })
        }
    }

    #[test]
    fn json_lines_are_tagged_records_that_parse_back() {
        let mut sink = JsonLines::new("mem", Vec::new(), false);
        sink.alert(&alert()).unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["record"], "alert");
        assert_eq!(v["subject"]["kind"], "device");
        assert_eq!(v["evidence"]["kind"], "traffic");
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, alert());
    }

    #[test]
    fn a_failing_sink_does_not_starve_the_others() {
        let mut fan = Fanout::new();
        fan.push(Box::new(Broken));
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<Alert>>>);
        impl AlertSink for Shared {
            fn alert(&mut self, a: &Alert) -> Result<(), SinkError> {
                self.0.lock().unwrap().push(a.clone());
                Ok(())
            }
        }
        fan.push(Box::new(Shared(out.clone())));
        assert!(fan.alert(&alert()).is_err());
        assert_eq!(out.lock().unwrap().len(), 1);
    }
}
