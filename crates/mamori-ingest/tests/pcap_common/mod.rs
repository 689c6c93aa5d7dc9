//! Synthetic captures with known contents, shared by the `pcap_*` and `fuzz_pcap` tests.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Cursor, Write};

use mamori_ingest::pcap::{CaptureReader, PcapError};

/// An owned packet: `(number, ts_ns, orig_len, data)`.
pub type Pkt = (u64, u64, u32, Vec<u8>);

/// A capture and the byte offset of each packet record.
pub struct Built {
    pub bytes: Vec<u8>,
    pub offsets: Vec<usize>,
}

/// Payload of packet `i`: an Ethernet-sized frame of varying length and contents.
pub fn payload(i: usize) -> Vec<u8> {
    let len = 54 + (i * 37) % 200;
    (0..len).map(|k| (k * 31 + i * 7) as u8).collect()
}

/// Time of packet `i` in seconds and microseconds (10 ms apart, from a 2021 epoch second).
pub fn time(i: usize) -> (u32, u32) {
    let us = 1_615_216_935_000_000u64 + i as u64 * 10_000 + (i as u64 * 13) % 997;
    ((us / 1_000_000) as u32, (us % 1_000_000) as u32)
}

/// A little-endian, microsecond classic pcap (Ethernet, snap length 65535) of `n` packets.
pub fn classic(n: usize) -> Built {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(out.len());
        let (sec, us) = time(i);
        let data = payload(i);
        for w in [sec, us, data.len() as u32, data.len() as u32 + 4] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&data);
    }
    Built {
        bytes: out,
        offsets,
    }
}

fn block(out: &mut Vec<u8>, btype: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.extend_from_slice(&btype.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend(std::iter::repeat_n(0, pad));
    out.extend_from_slice(&len.to_le_bytes());
}

/// A little-endian pcapng (one section, one Ethernet interface, microseconds) of `n` Enhanced
/// Packet Blocks, with an Interface Statistics Block after every tenth packet.
pub fn pcapng(n: usize) -> Built {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&[0xFF; 8]);
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(out.len());
        let (sec, us) = time(i);
        let ts = u64::from(sec) * 1_000_000 + u64::from(us);
        let data = payload(i);
        let mut body = Vec::new();
        for w in [
            0,
            (ts >> 32) as u32,
            ts as u32,
            data.len() as u32,
            data.len() as u32 + 4,
        ] {
            body.extend_from_slice(&w.to_le_bytes());
        }
        body.extend_from_slice(&data);
        block(&mut out, 6, &body);
        if i % 10 == 9 {
            block(&mut out, 5, &[0; 20]);
        }
    }
    Built {
        bytes: out,
        offsets,
    }
}

/// What packet `i` (0-based) of [`classic`] or [`pcapng`] should read as.
pub fn expected(i: usize) -> (u64, u32, Vec<u8>) {
    let (sec, us) = time(i);
    let data = payload(i);
    (
        u64::from(sec) * 1_000_000_000 + u64::from(us) * 1000,
        data.len() as u32 + 4,
        data,
    )
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

pub fn reader(bytes: &[u8], lenient: bool) -> Result<CaptureReader, PcapError> {
    CaptureReader::new(Box::new(Cursor::new(bytes.to_vec())), "t.pcap", lenient)
}

/// Every packet until the end or the first error.
pub fn read_all(r: &mut CaptureReader) -> Result<Vec<Pkt>, PcapError> {
    let mut out = Vec::new();
    while let Some(p) = r.next_packet()? {
        out.push((p.number, p.ts_ns, p.orig_len, p.data.to_vec()));
    }
    Ok(out)
}
