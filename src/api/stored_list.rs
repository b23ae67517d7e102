//! A JSON document of records as the cache stores it: a head, the records in chunks (a page of
//! records each) and a tail, each part kept ready to send in both codings. Sent as one body made
//! of the parts, without copying them; a few records changed rebuild only their chunks.
//!
//! The gzip form is one gzip member: a header, then each part compressed on its own as raw
//! deflate ending in a sync flush (an empty stored block, byte-aligned), so that the parts join
//! into one valid deflate stream; the tail ends it with a final block, the CRC-32 (combined from
//! the parts') and the length. Any gzip decoder reads it as a single stream.
//!
//! Validators need no second pass over the body: each part's SHA-256 is taken when it is made,
//! and the ETag hashes those digests.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::HeaderValue;
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http_body::{Frame, SizeHint};
use sha2::{Digest, Sha256};

use super::records::Brief;
use crate::cache::Body;

/// The gzip level: zlib-rs's level 2 compresses a list to about 19 % at about 300 MB/s on these
/// machines (level 6, the usual default, to 17 % at a third of the speed; bench/README.md).
const LEVEL: u32 = 2;

/// A gzip member header: deflate, no name, no time, unknown OS (as flate2 writes it).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One part of the document, in both codings, with what the whole needs of it.
#[derive(Debug, Clone)]
struct Part {
    json: Bytes,
    /// Raw deflate of `json`, ending in a sync flush.
    deflate: Bytes,
    crc: u32,
    digest: [u8; 16],
}

impl Part {
    /// The document's last part: its deflate ends the stream with a final block.
    fn new_final(json: Bytes, compress: &mut Compress) -> Self {
        Self {
            deflate: Bytes::from(deflate(compress, &json, FlushCompress::Finish)),
            crc: crc32fast::hash(&json),
            digest: digest(&json),
            json,
        }
    }

    fn new(json: Vec<u8>, compress: &mut Compress) -> Self {
        let deflate = deflate(compress, &json, FlushCompress::Sync);
        Self::made(json, Bytes::from(deflate))
    }

    /// A part from its JSON and that JSON's deflate, made before.
    fn made(json: Vec<u8>, deflate: Bytes) -> Self {
        Self {
            crc: crc32fast::hash(&json),
            digest: digest(&json),
            json: Bytes::from(json),
            deflate,
        }
    }
}

/// A run of records: their JSON, each after a comma unless it is the document's first record.
#[derive(Debug, Clone)]
struct Chunk {
    part: Part,
    /// Where each record's JSON starts in the part (after its comma).
    starts: Box<[u32]>,
    /// Each record's brief (shared: a patch copies the chunks it keeps).
    briefs: Arc<[Brief]>,
}

impl Chunk {
    /// The chunk, if every record is in the API's shape (see [`Brief::of`]).
    fn new(part: Part, starts: Box<[u32]>) -> Option<Self> {
        let mut chunk = Self {
            part,
            starts,
            briefs: Arc::new([]),
        };
        chunk.briefs = (0..chunk.records())
            .map(|i| Brief::of(chunk.record(i)))
            .collect::<Option<_>>()?;
        Some(chunk)
    }

    fn records(&self) -> usize {
        self.starts.len()
    }

    /// Record `i`'s JSON, without its comma.
    fn record(&self, i: usize) -> &[u8] {
        let start = self.starts[i] as usize;
        let end = match self.starts.get(i + 1) {
            Some(next) => *next as usize - 1,
            None => self.part.json.len(),
        };
        &self.part.json[start..end]
    }
}

/// The document, stored.
#[derive(Debug)]
pub struct StoredList {
    chunks: Vec<Chunk>,
    /// Bytes of the head's JSON, at the start of the first JSON frame.
    head_len: usize,
    tail: Bytes,
    /// The parts as sent: head, chunks, tail.
    json: Arc<[Bytes]>,
    /// The same as gzip: header and head, chunks, tail and trailer.
    gzip: Arc<[Bytes]>,
    json_len: u64,
    gzip_len: u64,
    etag: HeaderValue,
    gzip_etag: HeaderValue,
}

impl Body for StoredList {
    fn weight(&self) -> usize {
        let kept = size_of::<u32>() + size_of::<Brief>();
        (self.json_len + self.gzip_len) as usize + self.records() * kept
    }

    /// The shared cache's form: the ETag, the head and tail as JSON, and each chunk as its
    /// record offsets and its deflate (the JSON is inflated from it again).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.gzip_len as usize + self.chunks.len() * 512 + 1024);
        out.extend_from_slice(ENCODING);
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        field(&mut out, self.etag.as_bytes());
        field(&mut out, self.head());
        field(&mut out, &self.tail);
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for chunk in &self.chunks {
            out.extend_from_slice(&(chunk.starts.len() as u32).to_le_bytes());
            for start in &chunk.starts {
                out.extend_from_slice(&start.to_le_bytes());
            }
            field(&mut out, &chunk.part.deflate);
        }
        out
    }

    /// Checks everything it reads: offsets inside their chunk, each chunk a deflate of its own,
    /// and the ETag of the rebuilt document equal to the one stored.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut input = Reader(bytes.strip_prefix(ENCODING)?);
        let etag = input.field()?.to_vec();
        let head = input.field()?.to_vec();
        let tail = Bytes::copy_from_slice(input.field()?);
        let count = input.u32()? as usize;
        let mut chunks = Vec::with_capacity(count.min(bytes.len() / 8));
        for _ in 0..count {
            let records = input.u32()? as usize;
            let starts = (0..records)
                .map(|_| input.u32())
                .collect::<Option<Box<[u32]>>>()?;
            let deflate = Bytes::copy_from_slice(input.field()?);
            let json = inflate(&deflate)?;
            let ordered = starts.windows(2).all(|w| w[0] < w[1]);
            if records == 0 || !ordered || starts[records - 1] as usize > json.len() {
                return None;
            }
            chunks.push(Chunk::new(Part::made(json, deflate), starts)?);
        }
        if !input.0.is_empty() {
            return None;
        }
        let mut compress = Compress::new(Compression::new(LEVEL), false);
        let list = assemble(&mut compress, head, chunks, tail, None);
        (list.etag.as_bytes() == etag).then_some(list)
    }
}

/// The shared cache's format of a stored list, and its version: a build that reads another
/// version treats the entry as absent.
const ENCODING: &[u8] = b"stored-list/1\n";

/// Reads an encoded list front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (value, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*value))
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let value = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(value)
    }
}

/// Most JSON one chunk may inflate to: far above a page of records, far below harm.
const MAX_CHUNK_JSON: usize = 64 * 1024 * 1024;

/// The JSON of one chunk's deflate (raw, ending in a sync flush, not the stream's end).
fn inflate(deflate: &[u8]) -> Option<Vec<u8>> {
    let mut decompress = Decompress::new(false);
    let mut out = Vec::with_capacity(deflate.len() * 5 + 64);
    loop {
        let read = decompress.total_in() as usize;
        let status = decompress
            .decompress_vec(&deflate[read..], &mut out, FlushDecompress::Sync)
            .ok()?;
        if status == Status::StreamEnd {
            return None;
        }
        let consumed = decompress.total_in() as usize == deflate.len();
        if consumed && out.len() < out.capacity() {
            return Some(out);
        }
        if out.len() >= MAX_CHUNK_JSON
            || (read == decompress.total_in() as usize && out.len() < out.capacity())
        {
            return None;
        }
        out.reserve(out.capacity());
    }
}

/// Builds a [`StoredList`] as its records arrive, a chunk at a time.
#[derive(Debug)]
pub struct StoredListBuilder {
    compress: Compress,
    chunks: Vec<Chunk>,
    records: usize,
}

impl Default for StoredListBuilder {
    fn default() -> Self {
        Self {
            compress: Compress::new(Compression::new(LEVEL), false),
            chunks: Vec::new(),
            records: 0,
        }
    }
}

impl StoredListBuilder {
    /// Adds a chunk of records, each written into the buffer by `write`.
    pub fn push_chunk<R>(&mut self, records: &[R], mut write: impl FnMut(&R, &mut Vec<u8>)) {
        if records.is_empty() {
            return;
        }
        let chunk = make_chunk(
            &mut self.compress,
            self.records == 0,
            records.len(),
            |i, out| write(&records[i], out),
        );
        self.records += chunk.records();
        self.chunks.push(chunk);
    }

    /// The stored document: `head` goes before the records, `tail` after them.
    pub fn finish(mut self, head: Vec<u8>, tail: &'static [u8]) -> StoredList {
        assemble(
            &mut self.compress,
            head,
            self.chunks,
            Bytes::from_static(tail),
            None,
        )
    }
}

/// A chunk of `count` records, record `i` written by `write(i, ..)`, each after a comma unless
/// `first` says the chunk starts the document.
fn make_chunk(
    compress: &mut Compress,
    first: bool,
    count: usize,
    mut write: impl FnMut(usize, &mut Vec<u8>),
) -> Chunk {
    let mut json = Vec::with_capacity(count * 600);
    let mut starts = Vec::with_capacity(count);
    for i in 0..count {
        if i > 0 || !first {
            json.push(b',');
        }
        starts.push(u32::try_from(json.len()).expect("a chunk is far below 4 GiB"));
        write(i, &mut json);
    }
    // The records are the API's JSON, which a brief always reads (records.rs's property test).
    Chunk::new(Part::new(json, compress), starts.into_boxed_slice())
        .expect("the API's records are in the API's shape")
}

/// Chunks sent together as one frame: about 0.9 MB of JSON at full pages. Each frame costs a hit
/// a trip through the body's layers, so few is cheap; a patch copies only the frames it touches.
const CHUNKS_PER_FRAME: usize = 16;

/// The stored document from its parts. The chunks are copied into frames (head and first chunks,
/// further chunks, last chunks and tail) and kept as slices of them, so nothing is held twice.
/// With `previous` (the document patched, and which chunks changed), a frame whose chunks are all
/// unchanged and that holds neither head nor tail is taken over as it is.
fn assemble(
    compress: &mut Compress,
    head: Vec<u8>,
    mut chunks: Vec<Chunk>,
    tail: Bytes,
    previous: Option<(&StoredList, &[bool])>,
) -> StoredList {
    let head = Part::new(head, compress);
    let head_len = head.json.len();
    let tail_part = Part::new_final(tail.clone(), compress);
    // The CRC and length of the whole, combined from the parts'.
    let parts = || {
        std::iter::once(&head)
            .chain(chunks.iter().map(|c| &c.part))
            .chain(std::iter::once(&tail_part))
    };
    let mut crc = crc32fast::Hasher::new();
    let mut json_len: u64 = 0;
    let mut hash = Sha256::new();
    for part in parts() {
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            part.crc,
            part.json.len() as u64,
        ));
        json_len += part.json.len() as u64;
        hash.update(part.digest);
    }
    let hash = hex::encode(&hash.finalize()[..16]);
    let mut gzip_tail = tail_part.deflate.to_vec();
    gzip_tail.extend_from_slice(&crc.finalize().to_le_bytes());
    gzip_tail.extend_from_slice(&(json_len as u32).to_le_bytes()); // ISIZE is the length mod 2^32

    let frames = chunks.len().div_ceil(CHUNKS_PER_FRAME).max(1);
    let mut json = Vec::with_capacity(frames);
    let mut gzip = Vec::with_capacity(frames);
    for frame in 0..frames {
        let range = frame * CHUNKS_PER_FRAME..((frame + 1) * CHUNKS_PER_FRAME).min(chunks.len());
        let (first, last) = (frame == 0, frame == frames - 1);
        if let Some((old, changed)) = previous
            && !first
            && !last
            && frame + 1 < old.json.len()
            && !changed[range.clone()].contains(&true)
        {
            json.push(old.json[frame].clone());
            gzip.push(old.gzip[frame].clone());
            continue;
        }
        let size = |f: fn(&Part) -> &Bytes| {
            chunks[range.clone()]
                .iter()
                .map(|c| f(&c.part).len())
                .sum::<usize>()
        };
        let mut json_frame = Vec::with_capacity(size(|p| &p.json) + head.json.len() + tail.len());
        let mut gzip_frame = Vec::with_capacity(size(|p| &p.deflate) + head.deflate.len() + 64);
        if first {
            json_frame.extend_from_slice(&head.json);
            gzip_frame.extend_from_slice(&GZIP_HEADER);
            gzip_frame.extend_from_slice(&head.deflate);
        }
        let mut spans = Vec::with_capacity(range.len());
        for chunk in &chunks[range.clone()] {
            let (j, g) = (json_frame.len(), gzip_frame.len());
            json_frame.extend_from_slice(&chunk.part.json);
            gzip_frame.extend_from_slice(&chunk.part.deflate);
            spans.push((j..json_frame.len(), g..gzip_frame.len()));
        }
        if last {
            json_frame.extend_from_slice(&tail);
            gzip_frame.extend_from_slice(&gzip_tail);
        }
        let (json_frame, gzip_frame) = (Bytes::from(json_frame), Bytes::from(gzip_frame));
        for (chunk, (j, g)) in chunks[range].iter_mut().zip(spans) {
            chunk.part.json = json_frame.slice(j);
            chunk.part.deflate = gzip_frame.slice(g);
        }
        json.push(json_frame);
        gzip.push(gzip_frame);
    }
    let gzip: Arc<[Bytes]> = gzip.into();
    StoredList {
        etag: HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header"),
        gzip_etag: HeaderValue::from_str(&format!("\"{hash}-gz\"")).expect("hex is a valid header"),
        chunks,
        head_len,
        tail,
        json: json.into(),
        gzip_len: gzip.iter().map(|b| b.len() as u64).sum(),
        gzip,
        json_len,
    }
}

impl StoredList {
    /// The body in one coding, as parts sent one after another.
    pub fn body(&self, gzip: bool) -> Parts {
        let (parts, len) = if gzip {
            (&self.gzip, self.gzip_len)
        } else {
            (&self.json, self.json_len)
        };
        Parts {
            parts: parts.clone(),
            next: 0,
            remaining: len,
        }
    }

    /// The strong validator of the body in one coding (they differ: RFC 9110 8.8.3).
    pub fn etag(&self, gzip: bool) -> &HeaderValue {
        if gzip { &self.gzip_etag } else { &self.etag }
    }

    /// The document a client reads from the body in one coding (for tests).
    #[cfg(test)]
    pub(super) fn document(&self, gzip: bool) -> Vec<u8> {
        let parts = if gzip { &self.gzip } else { &self.json };
        let body: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        if gzip { tests::gunzip(&body) } else { body }
    }

    /// The document's head: everything before the first record.
    pub fn head(&self) -> &[u8] {
        &self.json[0][..self.head_len]
    }

    /// Each record's JSON, without its comma, in order, with its index; from the last one back.
    pub fn records_from_last(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let total = self.records();
        self.chunks
            .iter()
            .rev()
            .flat_map(|chunk| (0..chunk.records()).rev().map(move |i| chunk.record(i)))
            .enumerate()
            .map(move |(back, json)| (total - 1 - back, json))
    }

    /// Each record's JSON, without its comma, in order, with its brief.
    pub fn each_record_briefly(&self) -> impl Iterator<Item = (&[u8], &Brief)> {
        self.chunks.iter().flat_map(|chunk| {
            (0..chunk.records()).map(move |i| (chunk.record(i), &chunk.briefs[i]))
        })
    }

    /// Each record's JSON, without its comma, in order.
    pub fn each_record(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .flat_map(|chunk| (0..chunk.records()).map(move |i| chunk.record(i)))
    }

    /// The records stored.
    pub fn records(&self) -> usize {
        self.chunks.iter().map(Chunk::records).sum()
    }

    /// The document with records replaced (by their index) and records appended, and a new head:
    /// only the chunks that change are written and compressed again. Each replacement and
    /// appended record is written by `write`. Appended records fill the last chunk up to
    /// `chunk_records`, then make new chunks of that many.
    pub fn patched<R>(
        &self,
        head: Vec<u8>,
        replaced: &[(usize, R)],
        appended: &[R],
        chunk_records: usize,
        mut write: impl FnMut(&R, &mut Vec<u8>),
    ) -> Result<Self, PatchError> {
        let mut compress = Compress::new(Compression::new(LEVEL), false);
        let total = self.records();
        let mut chunks = self.chunks.clone();
        let mut changed = vec![false; chunks.len()];
        // Which chunk each replacement falls in, and where in it.
        let mut firsts = Vec::with_capacity(chunks.len());
        let mut seen = 0;
        for chunk in &chunks {
            firsts.push(seen);
            seen += chunk.records();
        }
        let mut by_chunk: Vec<Vec<(usize, &R)>> = vec![Vec::new(); chunks.len()];
        for (index, record) in replaced {
            if *index >= total {
                return Err(PatchError::NoSuchRecord(*index));
            }
            let chunk = firsts.partition_point(|first| *first <= *index) - 1;
            by_chunk[chunk].push((index - firsts[chunk], record));
        }
        for (c, changes) in by_chunk.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
            let old = &chunks[c];
            let mut new: Vec<Option<&R>> = vec![None; old.records()];
            for (i, record) in changes {
                new[*i] = Some(*record);
            }
            chunks[c] = rewrite(&mut compress, old, c == 0, &new, &mut write);
            changed[c] = true;
        }
        let mut appended = appended;
        if let Some(last) = chunks.last()
            && last.records() < chunk_records
            && !appended.is_empty()
        {
            let take = (chunk_records - last.records()).min(appended.len());
            let c = chunks.len() - 1;
            let mut new: Vec<Option<&R>> = vec![None; last.records()];
            new.extend(appended[..take].iter().map(Some));
            chunks[c] = rewrite(&mut compress, &chunks[c], c == 0, &new, &mut write);
            changed[c] = true;
            appended = &appended[take..];
        }
        for run in appended.chunks(chunk_records.max(1)) {
            let first = chunks.is_empty();
            let chunk = make_chunk(&mut compress, first, run.len(), |i, out| {
                write(&run[i], out)
            });
            chunks.push(chunk);
            changed.push(true);
        }
        Ok(assemble(
            &mut compress,
            head,
            chunks,
            self.tail.clone(),
            Some((self, &changed)),
        ))
    }
}

/// A chunk with some records replaced or added (`Some`) and the others kept as they are.
fn rewrite<R>(
    compress: &mut Compress,
    old: &Chunk,
    first: bool,
    records: &[Option<&R>],
    write: &mut impl FnMut(&R, &mut Vec<u8>),
) -> Chunk {
    make_chunk(compress, first, records.len(), |i, out| match records[i] {
        Some(record) => write(record, out),
        None => out.extend_from_slice(old.record(i)),
    })
}

/// Why a patch cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("there is no record {0} to replace")]
    NoSuchRecord(usize),
}

/// Bytes of a document from which its parts are compressed at once, a thread each.
const GZIP_PARTS_IN_PARALLEL_FROM: usize = 1 << 20;

/// A document given in parts as one gzip member, in parts too: the header, then each part
/// compressed on its own as the stored lists' are (see the module's documentation), the
/// CRC-32 and length after the last. A long document's parts are compressed at once on
/// threads of their own.
pub(super) fn gzip_parts(parts: &[Bytes]) -> Vec<Bytes> {
    let last = parts.len().saturating_sub(1);
    let compress = |i: usize, part: &[u8]| {
        let mut compress = Compress::new(Compression::new(LEVEL), false);
        let flush = if i == last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        (deflate(&mut compress, part, flush), crc32fast::hash(part))
    };
    let len: usize = parts.iter().map(Bytes::len).sum();
    let compressed: Vec<(Vec<u8>, u32)> = if parts.len() < 2 || len < GZIP_PARTS_IN_PARALLEL_FROM {
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| compress(i, part))
            .collect()
    } else {
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..parts.len())
                .map(|i| scope.spawn(move || compress(i, &parts[i])))
                .collect();
            let first = compress(0, &parts[0]);
            std::iter::once(first)
                .chain(others.into_iter().map(|other| {
                    other
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                }))
                .collect()
        })
    };
    let mut crc = crc32fast::Hasher::new();
    for ((_, part_crc), part) in compressed.iter().zip(parts) {
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            *part_crc,
            part.len() as u64,
        ));
    }
    let mut deflated: Vec<Vec<u8>> = compressed.into_iter().map(|(deflate, _)| deflate).collect();
    if deflated.is_empty() {
        deflated.push(compress(0, &[]).0);
    }
    let trailer = deflated.last_mut().expect("one part at least");
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    trailer.extend_from_slice(&(len as u32).to_le_bytes()); // ISIZE is the length mod 2^32
    std::iter::once(Bytes::from_static(&GZIP_HEADER))
        .chain(deflated.into_iter().map(Bytes::from))
        .collect()
}

/// Compresses `data` on its own (the compressor is reset first) as raw deflate.
fn deflate(compress: &mut Compress, data: &[u8], flush: FlushCompress) -> Vec<u8> {
    compress.reset();
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    loop {
        let read = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[read..], &mut out, flush)
            .expect("deflate into a vector cannot fail");
        let consumed = compress.total_in() as usize == data.len();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A flush is complete once all input is in and the output did not fill up.
            _ => consumed && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}

fn digest(data: &[u8]) -> [u8; 16] {
    let full = Sha256::digest(data);
    let mut digest = [0; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// A stored body as it is sent: its parts, one frame each, nothing copied.
#[derive(Debug)]
pub struct Parts {
    parts: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl Parts {
    /// A body of `parts`, sent in order.
    pub fn new(parts: Arc<[Bytes]>) -> Self {
        let remaining = parts.iter().map(|b| b.len() as u64).sum();
        Self {
            parts,
            next: 0,
            remaining,
        }
    }
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(part) = self.parts.get(self.next).cloned() else {
            return Poll::Ready(None);
        };
        self.next += 1;
        self.remaining -= part.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.parts.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Read as _;

    use super::*;

    /// A record in the API's shape (as far as a brief reads it) with `n` as its join time.
    fn record(n: u32) -> String {
        const FRONT: &str = r#"{"userid":null,"ms_open_id":null,"uuid":"u","open_id":null,"user_name":null,"user_name_base64":null,"is_enterprise_user":null,"phone":null,"join_time":"#;
        format!(r#"{FRONT}{n},"left_time":null,"instanceid":null,"user_role":null,"net":null}}"#)
    }

    fn write_number(n: &u32, out: &mut Vec<u8>) {
        out.extend_from_slice(record(*n).as_bytes());
    }

    fn build(pages: &[&[u32]]) -> StoredList {
        let mut builder = StoredListBuilder::default();
        for page in pages {
            builder.push_chunk(page, write_number);
        }
        builder.finish(b"{\"list\":[".to_vec(), b"]}")
    }

    fn expected(numbers: &[u32]) -> Vec<u8> {
        let items: Vec<String> = numbers.iter().map(|n| record(*n)).collect();
        format!("{{\"list\":[{}]}}", items.join(",")).into_bytes()
    }

    fn joined(parts: &Arc<[Bytes]>) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    pub(super) fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn parts_gzipped_each_on_their_own_decode_as_one_document() {
        let long: Vec<u8> = (0..400_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let cases: [&[&[u8]]; 5] = [
            &[],
            &[b"one part"],
            &[b"two ", b"parts"],
            &[b"a", b"", b"c"],
            &[&long[..900_000], &long[900_000..]],
        ];
        for parts in cases {
            let parts: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
            let gzip = gzip_parts(&parts);
            // One member: flate2's `GzDecoder` reads the first member only.
            assert_eq!(gunzip(&gzip.concat()), parts.concat());
        }
    }

    #[test]
    fn the_parts_join_into_the_document_in_both_codings() {
        let list = build(&[&[1, 2, 3], &[4], &[5, 6]]);
        let json = joined(&list.json);
        assert_eq!(json, expected(&[1, 2, 3, 4, 5, 6]));
        assert_eq!(list.json_len as usize, json.len());
        let gzip = joined(&list.gzip);
        assert_eq!(list.gzip_len as usize, gzip.len());
        assert_eq!(gunzip(&gzip), json);
        assert_eq!(
            (list.json.len(), list.gzip.len()),
            (1, 1),
            "a small list is one frame"
        );
        assert_eq!(joined(&build(&[]).json), b"{\"list\":[]}");
        assert_eq!(gunzip(&joined(&build(&[]).gzip)), b"{\"list\":[]}");
    }

    #[test]
    fn the_shared_form_decodes_into_the_same_bytes_and_refuses_anything_else() {
        let pages: Vec<Vec<u32>> = (0..40).map(|p| (p * 3..p * 3 + 3).collect()).collect();
        let pages: Vec<&[u32]> = pages.iter().map(Vec::as_slice).collect();
        for list in [build(&pages), build(&[]), build(&[&[1]])] {
            let encoded = list.encode();
            let decoded = StoredList::decode(&encoded).expect("decodes");
            for gzip in [false, true] {
                assert_eq!(
                    joined(&decoded.body(gzip).parts),
                    joined(&list.body(gzip).parts)
                );
                assert_eq!(decoded.etag(gzip), list.etag(gzip));
            }
            assert_eq!(decoded.records(), list.records());
            assert!(
                decoded
                    .each_record_briefly()
                    .map(|(_, brief)| brief)
                    .eq(list.each_record_briefly().map(|(_, brief)| brief))
            );
            assert_eq!(decoded.weight(), list.weight());
            // Another version's format, a cut, a flipped byte: absent, never misread.
            let mut other = encoded.clone();
            other[ENCODING.len() - 2] = b'2';
            assert!(StoredList::decode(&other).is_none());
            assert!(StoredList::decode(&encoded[..encoded.len() - 1]).is_none());
            let mut flipped = encoded.clone();
            let last = flipped.len() - 3;
            flipped[last] ^= 0x55;
            assert!(StoredList::decode(&flipped).is_none());
        }
    }

    #[test]
    fn a_patch_gives_the_document_a_full_build_would() {
        let list = build(&[&[1, 2, 3], &[4, 5, 6], &[7]]);
        let patched = list
            .patched(
                b"{\"list\":[".to_vec(),
                &[(0, 10), (6, 70)],
                &[8, 9, 11, 12],
                3,
                write_number,
            )
            .expect("applies");
        let numbers = [10, 2, 3, 4, 5, 6, 70, 8, 9, 11, 12];
        assert_eq!(joined(&patched.json), expected(&numbers));
        assert_eq!(gunzip(&joined(&patched.gzip)), expected(&numbers));
        assert_eq!(patched.records(), numbers.len());
        // Appending to an empty document starts it without a comma.
        let empty = build(&[]).patched(b"{\"list\":[".to_vec(), &[], &[1, 2], 3, write_number);
        assert_eq!(joined(&empty.expect("applies").json), expected(&[1, 2]));
        assert_eq!(
            list.patched(Vec::new(), &[(7, 0)], &[], 3, write_number)
                .err(),
            Some(PatchError::NoSuchRecord(7))
        );
    }

    #[test]
    fn a_patch_copies_only_the_frames_it_touches() {
        let numbers: Vec<u32> = (0..50).collect();
        let pages: Vec<&[u32]> = numbers.chunks(1).collect();
        let list = build(&pages);
        assert_eq!(list.json.len(), 4, "16 chunks a frame");
        let patched = list
            .patched(b"{\"list\":[".to_vec(), &[(40, 400)], &[], 1, write_number)
            .expect("applies");
        let mut expected_numbers = numbers.clone();
        expected_numbers[40] = 400;
        assert_eq!(joined(&patched.json), expected(&expected_numbers));
        assert_eq!(gunzip(&joined(&patched.gzip)), expected(&expected_numbers));
        // Frame 1 (chunks 16 to 31) holds neither head, tail nor a change: taken over as it is.
        assert_eq!(patched.json[1].as_ptr(), list.json[1].as_ptr());
        assert_eq!(patched.gzip[1].as_ptr(), list.gzip[1].as_ptr());
        assert_ne!(patched.json[2].as_ptr(), list.json[2].as_ptr());
    }

    #[test]
    fn validators_follow_the_bytes() {
        let a = build(&[&[1, 2], &[3]]);
        let b = build(&[&[1, 2], &[3]]);
        let c = build(&[&[1, 2], &[4]]);
        assert_eq!(a.etag(false), b.etag(false));
        assert_ne!(a.etag(false), c.etag(false));
        assert_ne!(a.etag(false), a.etag(true));
    }
}
