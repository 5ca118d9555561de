//! Cross-target checks for unmix: the same inputs through the host and the firmware.
