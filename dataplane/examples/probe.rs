//! Attaches to the given ports and prints every control frame with its ingress
//! port; with `--send PORT`, sends a broadcast test frame out of that port.
//! A debugging aid: `cargo run -p igmpsnoop-dataplane --example probe -- p1 p2`.
use std::time::{Duration, Instant};

use igmpsnoop_dataplane::{Dataplane, XdpMode};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut send_port = None;
    let mut mode = XdpMode::Auto;
    let mut secs = 5;
    while let Some(i) = args.iter().position(|a| a.starts_with("--")) {
        let flag = args.remove(i);
        let value = args.remove(i);
        match flag.as_str() {
            "--send" => send_port = Some(value),
            "--mode" => mode = value.parse()?,
            "--secs" => secs = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let mut dp = Dataplane::open(&args, mode)?;
    for p in dp.ports() {
        println!(
            "port {} ifindex {} index {} mode {}",
            p.name, p.ifindex, p.index, p.mode
        );
    }
    if let Some(name) = send_port {
        let index = dp.port_by_name(&name).ok_or("no such port")?.index;
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99, 0x88, 0xb5]);
        frame.extend_from_slice(b"igmpsnoop-probe-frame-padding-to-60-bytes-xxxxxxxxxx");
        dp.send(index, &frame)?;
        println!("sent {} bytes out of {name}", frame.len());
    }
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        dp.receive(|r| {
            println!(
                "rx port {} len {} head {:02x?}",
                r.port,
                r.frame.len(),
                &r.frame[..r.frame.len().min(48)]
            )
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in dp.ports() {
        let c = dp.stats.port_counters(p.index)?;
        println!(
            "{}: {:?}",
            p.name,
            c.iter().filter(|(_, v)| *v > 0).collect::<Vec<_>>()
        );
    }
    Ok(())
}
