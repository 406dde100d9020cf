//! `trace` and `capture`: arm the dataplane's recorder for N packets, collect them as they
//! come (polling, so the daemon never blocks on us), then print each packet's path or write
//! a pcap with every packet before and after translation.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use control::client::{Client, ClientError};
use control::proto::{from_hex, CapturedPacket, Request, Response};

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// How many packets.
    #[arg(long, default_value_t = 10)]
    count: u32,
    /// Give up after this many seconds, printing what came.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    #[arg(long, default_value_t = 100)]
    count: u32,
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The pcap file to write (tcpdump -r, tshark -r read it).
    #[arg(short = 'w', long)]
    write: PathBuf,
}

/// Arms, collects and disarms; returns the packets and the wall-clock time of arming.
fn collect(
    client: &mut Client,
    count: u32,
    timeout: u64,
) -> Result<(Vec<CapturedPacket>, SystemTime), ClientError> {
    let armed_at = SystemTime::now();
    client.request(Request::CaptureStart { count })?;
    let end = Instant::now() + Duration::from_secs(timeout);
    let mut packets = Vec::new();
    loop {
        if let Response::Captured {
            packets: got,
            remaining,
        } = client.request(Request::CaptureFetch)?
        {
            packets.extend(got);
            if remaining == 0 || Instant::now() >= end {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    client.request(Request::CaptureStart { count: 0 })?;
    Ok((packets, armed_at))
}

pub fn trace(client: &mut Client, a: &TraceArgs) -> Result<String, ClientError> {
    let (packets, _) = collect(client, a.count, a.timeout)?;
    let mut out = String::new();
    for (i, p) in packets.iter().enumerate() {
        out.push_str(&format!(
            "#{} queue {} +{:.6}s {} bytes\n",
            i + 1,
            p.queue,
            p.at_ns as f64 / 1e9,
            p.input_len
        ));
        for line in &p.path {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if packets.len() < a.count as usize {
        out.push_str(&format!(
            "({} of {} packets in {} s)\n",
            packets.len(),
            a.count,
            a.timeout
        ));
    }
    Ok(out)
}

pub fn capture(client: &mut Client, a: &CaptureArgs) -> Result<String, ClientError> {
    let (packets, armed_at) = collect(client, a.count, a.timeout)?;
    let base = armed_at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut pcap = pcap_header();
    let (mut before, mut after) = (0, 0);
    for p in &packets {
        let at = base + Duration::from_nanos(p.at_ns);
        if let Some(bytes) = from_hex(&p.input_hex) {
            pcap_record(&mut pcap, at, &bytes, p.input_len);
            before += 1;
        }
        if let Some(bytes) = p.output_hex.as_deref().and_then(from_hex) {
            let len = bytes.len() as u32;
            pcap_record(&mut pcap, at, &bytes, len);
            after += 1;
        }
    }
    std::fs::write(&a.write, pcap).map_err(ClientError::Io)?;
    Ok(format!(
        "wrote {} packets to {} ({before} as received, {after} as sent)\n",
        before + after,
        a.write.display()
    ))
}

/// The classic pcap file header: microsecond timestamps, Ethernet frames.
fn pcap_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
    h.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    h.extend_from_slice(&65535u32.to_le_bytes()); // snap length
    h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    h
}

fn pcap_record(out: &mut Vec<u8>, at: Duration, bytes: &[u8], original_len: u32) {
    out.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&at.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&original_len.max(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}
