/**
 * Opening files that input names (run files, catalog.yml, manifests) so that a
 * FIFO, device or directory put in their place fails at once instead of
 * blocking the open or reading forever.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { PackStreamError } from '../errors.js';

/**
 * Open `file` read-only and non-blocking (a FIFO with no writer cannot stall the
 * open), then require a regular file on the open descriptor. Errors from the
 * open itself (ENOENT, EACCES) are thrown as they are, for callers to word.
 */
export async function openRegular(file: string, what: string): Promise<FileHandle> {
  return (await openRegularSized(file, what)).fh;
}

/** openRegular, and the file's size from the same fstat (one call fewer for readers that need it). */
export async function openRegularSized(file: string, what: string): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  let st;
  try {
    st = await fh.stat();
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  if (!st.isFile()) {
    await fh.close().catch(() => undefined);
    throw new PackStreamError('E_NOT_REGULAR', `${what} ${file} is not a regular file (a FIFO, device, directory or socket), so it is not read`, { subject: file });
  }
  return { fh, size: st.size };
}

/** The text of a regular file, refused (E_LIMIT) beyond `maxBytes`. */
export async function readRegularText(file: string, what: string, maxBytes: number): Promise<string> {
  const fh = await openRegular(file, what);
  try {
    const size = (await fh.stat()).size;
    if (size > maxBytes) {
      throw new PackStreamError('E_LIMIT', `${what} ${file} is ${size} bytes, more than the ${maxBytes} bytes such a file may have`, { subject: file });
    }
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    await fh.close().catch(() => undefined);
  }
}
