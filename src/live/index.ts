/**
 * live/: a drained live recording: capture plus pipeline on the capture clock, and the marker
 * datagram that proves every packet sent before a stop was decoded (no fixed sleep).
 */
export { Recorder } from './recorder.js';
