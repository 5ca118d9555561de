//! The host's golden results equal the checked-in expectation, bit for bit.

#[test]
fn host_bits_equal_the_checked_in_expectation() {
    let host = unmix_tests::host_lines();

    if std::env::var_os("UNMIX_BLESS").is_some() {
        // Blessing in CI would turn the comparison into one that cannot fail.
        assert!(
            std::env::var_os("CI").is_none(),
            "UNMIX_BLESS is for a deliberate change made by hand, not for CI"
        );
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
