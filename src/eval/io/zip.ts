// Reads members of a zip in place (yauzl: central directory, zip64, deflate), so MME-RealWorld-Lite's
// data.zip is never extracted and nothing is written into --data-root.
import * as yauzl from 'yauzl';

export class ZipArchive {
  private constructor(
    readonly file: string,
    private readonly zip: yauzl.ZipFile,
    /** entries by their full path inside the archive (directories left out) */
    readonly entries: Map<string, yauzl.Entry>,
  ) {}

  static async open(file: string): Promise<ZipArchive> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
    } catch (err) {
      throw new Error(`${file} is not a readable zip archive: ${(err as Error).message}`);
    }
    const entries = new Map<string, yauzl.Entry>();
    try {
      for await (const entry of zip.eachEntry()) if (!entry.fileName.endsWith('/')) entries.set(entry.fileName, entry);
    } catch (err) {
      zip.close();
      throw new Error(`${file}: broken zip directory: ${(err as Error).message}`);
    }
    return new ZipArchive(file, zip, entries);
  }

  /** The member's bytes; throws naming the archive and member when it is missing or corrupt. */
  async read(name: string): Promise<Buffer> {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.file} has no member ${name}`);
    try {
      const stream = await this.zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      throw new Error(`${this.file}: cannot read ${name}: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.zip.close();
  }
}
