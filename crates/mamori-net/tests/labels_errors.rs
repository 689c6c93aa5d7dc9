//! Labels files: times that are not finite or are negative are refused naming `file:line` and
//! the value, and no message echoes control characters from the file.

use mamori_net::labels::Labels;

#[test]
fn non_finite_and_negative_times_name_the_line() {
    for (bad, what) in [
        ("nan", "not a finite time"),
        ("inf", "not a finite time"),
        ("-5", "negative"),
        ("-0.5", "negative"),
    ] {
        let text = format!("100 110 10.0.0.3 10.0.0.2 ok\n{bad} 110 10.0.0.3 * bad\n");
        let mut l = Labels::default();
        let e = l.add_text(&text, "l.tsv").unwrap_err().to_string();
        assert!(e.starts_with("l.tsv:2: "), "{e}");
        assert!(e.contains(bad) && e.contains(what), "{e}");
        assert!(l.is_empty());
    }
}

#[test]
fn messages_do_not_echo_control_characters() {
    let mut l = Labels::default();
    let e = l
        .add_text("1\u{1b}[2J 110 10.0.0.3 * x\n", "l.tsv")
        .unwrap_err()
        .to_string();
    assert!(!e.chars().any(char::is_control), "{e:?}");
    // shown escaped, as every reader's messages are (`mamori_ingest::shown`)
    assert!(e.starts_with("l.tsv:1: ") && e.contains("\\x1b[2J"), "{e}");
}
