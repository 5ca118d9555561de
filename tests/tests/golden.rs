//! The host's golden results equal the checked-in expectation, bit for bit.

#[test]
fn host_bits_equal_the_checked_in_expectation() {
    let host = unmix_tests::host_lines();

    if std::env::var_os("UNMIX_BLESS").is_some() {
        std::fs::write(unmix_tests::EXPECTED, &host).expect("expected.txt is writable");
    }
    let expected = std::fs::read_to_string(unmix_tests::EXPECTED).expect("expected.txt exists");

    for (line, (want, got)) in expected.lines().zip(host.lines()).enumerate() {
        assert_eq!(want, got, "golden line {} differs on the host", line + 1);
    }
    assert_eq!(
        expected.lines().count(),
        host.lines().count(),
        "number of golden lines"
    );
}
