//! The device side as one piece: spool, intake and sender, started and stopped together (by
//! `mamori ship` and by the agent's `[ship]` section).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::intake::{FileSource, FullHook, Intake, IntakeHandle, IntakeOptions};
use crate::shipper::{self, ShipError, ShipperConfig};
use crate::spool::{OpenReport, Spool, SpoolError, SpoolOptions};
use crate::stats::ShipStats;

/// Everything the device side needs.
#[derive(Clone)]
pub struct DeviceConfig {
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// Spool limits.
    pub spool: SpoolOptions,
    /// Files to follow.
    pub sources: Vec<FileSource>,
    /// Batching, heartbeat, queue.
    pub intake: IntakeOptions,
    /// Where to send.
    pub shipper: ShipperConfig,
    /// On stop, how long to go on sending what is committed.
    pub drain: Duration,
}

/// A running shipper.
pub struct RunningShipper {
    spool: Arc<Mutex<Spool>>,
    intake: Option<Intake>,
    stats: Arc<ShipStats>,
    stop: watch::Sender<bool>,
    sender: Option<JoinHandle<Result<(), ShipError>>>,
    opened: OpenReport,
}

/// Starting or stopping failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The spool.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A source file or a thread.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The sender gave up.
    #[error(transparent)]
    Ship(#[from] ShipError),
}

impl RunningShipper {
    /// Opens the spool, starts following the sources and sending.
    pub fn start(config: DeviceConfig, on_full: Option<FullHook>) -> Result<Self, DeviceError> {
        let spool = Spool::open(&config.spool_dir, config.spool.clone())?;
        let opened = spool.open_report().clone();
        let spool = Arc::new(Mutex::new(spool));
        let stats = Arc::new(ShipStats::default());
        stats.observe(&spool.lock().unwrap_or_else(PoisonError::into_inner));
        let wake = Arc::new(Notify::new());
        let intake = Intake::start(
            Arc::clone(&spool),
            config.sources.clone(),
            config.intake.clone(),
            Arc::clone(&stats),
            Arc::clone(&wake),
            on_full,
        )?;
        let (stop, stop_rx) = watch::channel(false);
        let sender = {
            let spool = Arc::clone(&spool);
            let stats = Arc::clone(&stats);
            let cfg = config.shipper.clone();
            let drain = config.drain;
            std::thread::Builder::new()
                .name("ship-send".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| ShipError::Config(format!("tokio runtime: {e}")))?;
                    rt.block_on(shipper::run(spool, wake, cfg, stats, stop_rx, drain))
                })?
        };
        Ok(RunningShipper {
            spool,
            intake: Some(intake),
            stats,
            stop,
            sender: Some(sender),
            opened,
        })
    }

    /// What opening the spool found and mended.
    pub fn opened(&self) -> &OpenReport {
        &self.opened
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<ShipStats> {
        &self.stats
    }

    /// For records from inside the process.
    pub fn handle(&self) -> Option<IntakeHandle> {
        self.intake.as_ref().map(Intake::handle)
    }

    /// The chain's fingerprint (hex).
    pub fn fingerprint(&self) -> String {
        hex::encode(
            self.spool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fingerprint(),
        )
    }

    /// True once the sender has stopped on its own (refused, or a configuration error).
    pub fn sender_finished(&self) -> bool {
        match &self.sender {
            None => true,
            Some(h) => h.is_finished(),
        }
    }

    /// Seals what the sources hold now, sends for up to the drain time, and stops.
    pub fn stop(mut self) -> Result<(), DeviceError> {
        if let Some(intake) = self.intake.take() {
            intake.stop()?;
        }
        let _ = self.stop.send(true);
        match self.sender.take().map(JoinHandle::join) {
            Some(Ok(r)) => r?,
            Some(Err(_)) => {
                return Err(DeviceError::Io(std::io::Error::other(
                    "the sender thread panicked",
                )))
            }
            None => {}
        }
        Ok(())
    }
}
