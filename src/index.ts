/**
 * pack-stream's public API: the named operations users know from
 * databroker-pack (in TypeScript naming) and the stages they are built from.
 */
export { PackStreamError, describeError, isPackStreamError, type ErrorCode } from './errors.js';
export { VERSION } from './version.js';
export type { Catalog, DocName, DocPair, Format, ReadOptions, RunRef } from './types.js';

// values and codecs
export { PyFloat, pyFloat, deepEqual, docKeys, docFromEntries, field, isPlainDoc, toNumber, type Doc, type PyMap, type Value } from './codec/values.js';
export { RecordScanner, MsgpackDecoder, MsgpackEncoder, decode as decodeMsgpack, encode as encodeMsgpack, encodeRecord as encodeMsgpackRecord, measure as measureMsgpack, Incomplete } from './codec/msgpack.js';
export { parsePyJson, stringifyPyJson, jsonlRecord, pyFloatRepr } from './codec/pyjson.js';
export { NdArray, NdScalar, parseDtype, dtypeOfTypedArray } from './codec/ndarray.js';
export type { Encodable } from './codec/values.js';

// sources
export { readMsgpackRecords, msgpackRecordsOf } from './sources/msgpack-records.js';
export { limits, setLimits, DEFAULT_LIMITS, parseByteSize, type Limits } from './limits.js';
export { readJsonlRecords } from './sources/jsonl-records.js';
export { FileCatalog, FileRun, openRunFile, readRecords, resolveKey, isBrokenRun, type FileCatalogOptions } from './sources/file-catalog.js';
export { readCatalogSources, fileCatalogFromEntry, loadYamlFile, MSGPACK_DRIVER, JSONL_DRIVER, MONGO_DRIVER } from './sources/catalog-yaml.js';
export { openSource, openCatalogYaml } from './sources/open.js';
export { MongoCatalog, MongoRun, andQueries, escapeRegex, type MongoCatalogOptions } from './sources/mongo-catalog.js';
export { mongoCanonicalDocuments, externalKeys, type MongoCollections, type ReadTuning } from './sources/mongo-run.js';
export { readByKey, type KeysetOptions } from './sources/mongo-keyset.js';
export { decodeStored, toBson, toBsonDocument, NESTED_ARRAY, type StoredDoc, type ToBsonOptions } from './codec/bson.js';

// transforms
export { canonicalDocuments } from './transforms/canonical.js';
export { packEventPage, unpackEventPage, packDatumPage, unpackDatumPage } from './transforms/pages.js';
export { parseQuery, combineQueries, matchQuery, validateQuery, timeRange } from './transforms/query.js';
export { rootHash, randomSalt } from './transforms/root-hash.js';
export { HandlerRegistry, BUILTIN_LISTERS, BUILTIN_HANDLERS, READABLE_SPECS, DEFAULT_LIMITS as DEFAULT_HANDLER_LIMITS, resourceFilePath, type FileList, type FileLister, type ListerFactory, type Handler, type HandlerFactory, type HandlerLimits, type ReadContext } from './transforms/handlers.js';
export { ExternalFile, checkRegularFile, readExternalFile, type ReadExternalOptions } from './handlers/external-file.js';
export { applyHandlerOptions, loadHandlerModule } from './handlers/user-module.js';
export { parseNpy, readNpy } from './handlers/npy.js';
export { readTiff } from './handlers/tiff.js';
export { fillDocuments, DatumFiller, type FillOptions } from './transforms/fill.js';
export { pyPercentFormat } from './transforms/pyformat.js';
export { rewriteRoot, rewriteResourceRoots, collectExternalFiles, forEachDatumFile, ExternalFileCollector, type RootFiles } from './transforms/resources.js';
export { encodeDocuments, encoderFor, msgpackEncoder, jsonlEncoder, coalesce } from './transforms/encode.js';

// sinks
export { prepareTarget, AtomicFileWriter, writeFileAtomic } from './sinks/pack-directory.js';
export type { PackSink, RunFileWriter } from './sinks/sink.js';
export { DirectorySink } from './sinks/directory-sink.js';
export { TarSink, type StreamSinkOptions } from './sinks/tar-sink.js';
export { DocumentStreamSink } from './sinks/document-stream-sink.js';
export { openSink, type SinkChoice } from './sinks/open-sink.js';
export { HttpClient, parseHeaders, safeUrl, urlJoin, isHttpUrl, type HttpClientOptions, type RetryPolicy, type RetryInfo, type GetOptions, type HttpResponse } from './net/http.js';
export {
  writeDocumentsManifest,
  writeExternalFilesManifest,
  documentsManifestChunks,
  externalFilesManifestChunks,
  DEFAULT_MANIFEST_CHUNK,
  type ManifestChunk,
} from './sinks/manifests.js';
export { writeMsgpackCatalogFile, writeJsonlCatalogFile, catalogFileText, dumpYaml, catalogDocument } from './sinks/catalog-file.js';
export { copyExternalFiles, planCopies, ExternalFileCopier } from './sinks/copy-external.js';
export {
  MongoNormalizedWriter,
  MONGO_NORMALIZED_INDEXES,
  indexName,
  sameStored,
  type Conflict,
  type MongoWriterOptions,
  type RunWriteResult,
  type WriteCounts,
} from './sinks/mongo-normalized.js';

// pipelines
export {
  PackExporter,
  exportCatalog,
  exportUids,
  exportRun,
  type ExportOptions,
  type ExportSummary,
  type ExportProgress,
  type ExternalMode,
  type RunFailure,
  type RunResult,
} from './pipeline/export.js';
export { unpackInplace, unpackedCatalogDocument, pathlibAbsolute, type UnpackOptions, type UnpackResult } from './pipeline/unpack-inplace.js';
export {
  unpackMongoNormalized,
  mongoCatalogDocument,
  mongoUriFor,
  DEFAULT_MONGO_URI,
  type UnpackMongoOptions,
  type UnpackMongoResult,
  type UnpackMongoProgress,
} from './pipeline/unpack-mongo.js';
export { inspectRun, inspectCatalog, InspectTotalizer, type RunSummary, type InspectTotals, type InspectOptions, type ExternalFilesSummary } from './pipeline/inspect.js';
export { verifyPack, type VerifyReport, type VerifyProblem, type VerifyProblemKind, type VerifyOptions } from './pipeline/verify.js';

// catalogs known by name (intake / databroker discovery)
export {
  discoverCatalogs,
  findCatalog,
  openNamedCatalog,
  openDiscoveredCatalog,
  catalogSearchDirs,
  type DiscoveredCatalog,
  type CatalogDiscovery,
  type CatalogSearchDirs,
} from './catalogs/discovery.js';
export {
  userDataDir,
  globalDataDir,
  siteDataDir,
  catalogSearchPath,
  intakeConfigFile,
  intakeCatalogPath,
  v0ConfigDirs,
  type SearchEnv,
} from './catalogs/search-path.js';
