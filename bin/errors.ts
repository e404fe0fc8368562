// The command line's own errors (exit 2, the message alone), in a module of their own so
// that the command line can tell them apart without loading the modules that throw them.

/** A bad output path or a failed write or read: exit 2, a message naming the flag and path, no usage hint. */
export class FileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileError";
  }
}

/** Shards that do not belong to one run or do not cover it, or a bad --shard. */
export class ShardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShardError";
  }
}
