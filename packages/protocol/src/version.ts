/** Bumped on any incompatible change to the agent protocol; agents with another version are refused. */
export const PROTOCOL_VERSION = 8;

/** The Nimbus release; agents report theirs in `hello` and the service reports its own in service-info. */
export const NIMBUS_VERSION = "0.1.0";
