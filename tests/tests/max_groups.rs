//! `--max-groups` sizes the fast path: the kernel's group maps (GROUPS,
//! GROUPS6) are created with exactly that many entries, a value past the hard
//! cap is refused at start with the flag named, and pinned state made with
//! another size is refused (left for the daemon it fits), never adopted.
use std::time::Duration;

use igmpsnoop_common::{DEFAULT_MAX_GROUPS, GROUP_MAPS, MAX_GROUPS};
use igmpsnoop_tests::{
    Lab, Switch, igmpsnoop_bin, igmpsnoop_cli, map_max_entries, require_root_and_tools,
};

fn require() {
    require_root_and_tools(&[]);
    let bin = igmpsnoop_bin();
    assert!(
        bin.is_file(),
        "{bin:?} not built (cargo build -p igmpsnoop-control)"
    );
}

fn has_xdp(lab: &Lab, port: &str) -> bool {
    lab.exec(&lab.switch_ns(), &["ip", "-d", "link", "show", "dev", port])
        .unwrap()
        .contains("prog/xdp")
}

/// GROUPS' and GROUPS6's max_entries of the switch's pinned state.
fn group_map_sizes(sw: &Switch) -> Vec<u32> {
    let pin_dir = sw.pin_dir().expect("pinned");
    GROUP_MAPS
        .iter()
        .map(|name| map_max_entries(pin_dir, name).unwrap())
        .collect()
}

#[test]
fn the_kernels_group_maps_are_sized_by_max_groups() {
    require();
    let lab = Lab::new(2).unwrap();
    let mut sw = Switch::start(
        &lab,
        &["--port", "p1", "--port", "p2", "--max-groups", "5000"],
    )
    .unwrap();
    assert_eq!(group_map_sizes(&sw), [5000, 5000]);
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());

    let mut sw = Switch::start(&lab, &["--port", "p1", "--port", "p2"]).unwrap();
    assert_eq!(group_map_sizes(&sw), [DEFAULT_MAX_GROUPS; 2], "the default");
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());

    let cap = MAX_GROUPS.to_string();
    let sw = Switch::start(
        &lab,
        &["--port", "p1", "--port", "p2", "--max-groups", &cap],
    )
    .unwrap();
    assert_eq!(group_map_sizes(&sw), [MAX_GROUPS; 2], "the cap itself");
}

#[test]
fn max_groups_past_the_cap_or_zero_is_refused_naming_the_flag() {
    require();
    let lab = Lab::new(2).unwrap();
    for bad in [(MAX_GROUPS + 1).to_string(), "0".to_string()] {
        let err = Switch::start(
            &lab,
            &["--port", "p1", "--port", "p2", "--max-groups", &bad],
        )
        .err()
        .unwrap_or_else(|| panic!("--max-groups {bad} was accepted"));
        let text = format!("{err:#}");
        assert!(text.contains(&format!("--max-groups {bad}")), "{text}");
        assert!(
            text.contains(&MAX_GROUPS.to_string()),
            "the cap is not named: {text}"
        );
        assert!(!has_xdp(&lab, "p1"), "attached despite the refusal");
    }
}

#[test]
fn pinned_state_of_another_size_is_refused_and_left_alone() {
    require();
    let lab = Lab::new(2).unwrap();
    let socket = lab.scratch_file("sw").with_extension("sock");
    let keep = [
        "--port",
        "p1",
        "--port",
        "p2",
        "--keep-on-exit",
        "--max-groups",
        "1000",
    ];
    let mut sw = Switch::start_at(&lab, &socket, &keep).unwrap();
    let pin_dir = sw.pin_dir().unwrap().to_path_buf();
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());

    for other in ["2000", "500"] {
        let args = ["--port", "p1", "--port", "p2", "--max-groups", other];
        let err = Switch::start_at(&lab, &socket, &args)
            .err()
            .unwrap_or_else(|| panic!("adopted 1000-entry maps with --max-groups {other}"));
        let text = format!("{err:#}");
        assert!(
            text.contains("--max-groups 1000") && text.contains("cannot be adopted"),
            "{text}"
        );
        assert!(has_xdp(&lab, "p1"), "the refused state was touched");
        assert_eq!(map_max_entries(&pin_dir, "GROUPS").unwrap(), 1000);
    }

    // The size it was made with adopts it.
    let err = Switch::start_at(&lab, &socket, &keep[..4])
        .err()
        .expect("the default size adopted 1000-entry maps");
    let text = format!("{err:#}");
    assert!(
        text.contains("--max-groups 1000"),
        "default size adopted 1000: {text}"
    );
    let sw = Switch::start_at(&lab, &socket, &keep).unwrap();
    let pinned = sw.json(&["stats"]).unwrap()["pinned"].clone();
    assert!(!pinned["adopted"].is_null(), "not adopted: {pinned}");
    drop(sw);
    let out = igmpsnoop_cli(&["detach", "--pin-dir", &pin_dir.to_string_lossy()]);
    assert!(out.status.success(), "{out:?}");
    assert!(!has_xdp(&lab, "p1"));
}
