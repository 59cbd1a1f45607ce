import { createHash, randomBytes } from 'node:crypto';

/**
 * databroker-pack's root hash: md5 of the original resource root followed by
 * the salt, as 32 lowercase hex characters.
 * rootHash('f8483b80395561ac779a5425da6646ca', 'SALT') === '3e3b48cf1579c708c4b515de4927d03a'
 */
export function rootHash(root: string, salt: string | Uint8Array): string {
  return createHash('md5').update(Buffer.from(root, 'utf8')).update(typeof salt === 'string' ? Buffer.from(salt, 'utf8') : salt).digest('hex');
}

/** A fresh salt per pack, like Python's secrets.token_hex(32): 64 hex characters. */
export function randomSalt(): string {
  return randomBytes(32).toString('hex');
}
