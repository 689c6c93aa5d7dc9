//! Network anomaly detection for IoT gateways (seed 001 §3-1).
//!
//! Packets from a capture file or a live interface are decoded into [`packet::PacketMeta`]
//! (headers only), grouped per device and time window ([`features`]) or into bidirectional 5-tuple
//! flows, and scored by a supervised RBF SVM (`mamori_detect::svm`) or an unsupervised model
//! trained on normal traffic only: an autoencoder (`mamori_detect::autoencoder::VectorAutoencoder`)
//! or an isolation forest (`mamori_detect::iforest`); [`detector`] puts features, scaling, model
//! and threshold in one file. The algorithms themselves live in `mamori-detect`, which does no
//! I/O; this crate owns the packets.
#![deny(missing_docs)]

pub mod detector;
pub mod features;
pub mod labels;
pub mod live;
pub mod packet;
pub mod source;
