import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, UploadPartCopyCommand, type CompletedPart, type S3Client } from '@aws-sdk/client-s3';
import { copySource, MAX_COPY_BYTES } from './s3-upload.js';

/**
 * Copies an object inside its bucket, metadata (its SHA-256) included. Up to 5 GiB in one CopyObject; beyond, as a
 * multipart upload of UploadPartCopy ranges. The source must still be the object that was looked at (its ETag).
 */
export async function copyObject(client: S3Client, o: { bucket: string; from: string; to: string; size: number; etag: string; metadata: Record<string, string> }): Promise<void> {
  const source = copySource(o.bucket, o.from);
  if (o.size <= MAX_COPY_BYTES) {
    await client.send(new CopyObjectCommand({ Bucket: o.bucket, Key: o.to, CopySource: source, CopySourceIfMatch: o.etag, MetadataDirective: 'COPY' }));
    return;
  }
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: o.bucket, Key: o.to, Metadata: o.metadata }));
  const UploadId = created.UploadId!;
  try {
    const count = Math.ceil(o.size / MAX_COPY_BYTES);
    const each = Math.ceil(o.size / count);
    const parts: CompletedPart[] = [];
    for (let n = 0; n < count; n++) {
      const start = n * each;
      const end = Math.min(o.size, start + each) - 1;
      const out = await client.send(new UploadPartCopyCommand({ Bucket: o.bucket, Key: o.to, UploadId, PartNumber: n + 1, CopySource: source, CopySourceRange: `bytes=${start}-${end}`, CopySourceIfMatch: o.etag }));
      parts.push({ PartNumber: n + 1, ETag: out.CopyPartResult?.ETag });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: o.bucket, Key: o.to, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: o.to, UploadId })).catch(() => undefined);
    throw err;
  }
}
