import type { Exchange } from '../types.js';

/** Where a message was on the wire: capture times and frames of its first and last byte, and its size. */
export interface RedisSpan {
  start: number;
  end: number;
  frames: [number, number];
  /** Bytes of the message on the wire, RESP framing included. */
  size: number;
}

/** A command as the client sent it. Arguments are previews (bounded); secrets are marked, never hidden here. */
export interface RedisCommand extends RedisSpan {
  /** The first word, upper-case (GET, CLIENT). */
  command: string;
  /** The remaining words, each cut to the kept length; at most MAX_ITEMS - 1 of them. */
  args: string[];
  /** Arguments there were in all (args may hold fewer). */
  argc: number;
  /** Positions in `args` of secrets (AUTH's password …): the record module redacts them. */
  secrets?: number[];
  /** The command's key, where it has one (commands.ts). */
  key?: string;
  /** Sent as an inline command (a plain text line) rather than a RESP array. */
  inline?: true;
}

/** A reply, or a pushed message. */
export interface RedisReply extends RedisSpan {
  /** nil (a miss), simple, error, integer, bulk, array, map, set, push, double, boolean, verbatim, bignum. */
  type: string;
  /** A bounded preview of the value. */
  value?: string;
  /** Elements of an aggregate reply, or a bulk string's length in bytes. */
  length?: number;
  /** An error reply's message ("ERR unknown command …", "WRONGTYPE …"). */
  error?: string;
  /** Strings in `value` that follow a secret-looking name (a hash's "password" field): the record module redacts them. */
  secrets?: string[];
  /** Pub/sub push: the channel (and the pattern it matched), and the message. */
  channel?: string;
  pattern?: string;
  message?: string;
}

/** One command and its reply, or a push alone. */
export interface RedisTransaction {
  request?: RedisCommand;
  response?: RedisReply;
  /** Commands queued between MULTI and EXEC/DISCARD share a transaction number (1, 2 … per connection). */
  transaction?: number;
  /** The command was queued by MULTI: its response is its element of EXEC's reply, not the QUEUED. */
  queued?: true;
  /** The RESP version in use when the reply came (3 after a successful HELLO 3). */
  resp: 2 | 3;
}

/** What a Redis session emits: protocol "redis" and the exchange in `redis`. */
export interface RedisExchange extends Exchange {
  protocol: 'redis';
  redis: RedisTransaction;
}
