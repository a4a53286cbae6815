/** Reported in heartbeats and at pairing, so support can tell which agent a box runs. */
export const FIRMWARE_VERSION = 'scanbox-device/0.1.0';
