import { isIP } from 'node:net';
import { z } from 'zod';

// The one place where every setting, its default and its unit live. Durations end in Ms (milliseconds) or Days,
// sizes in Bytes or Kib. Objects are strict so a misspelt key is reported instead of silently ignored.

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().nonnegative();
const ms = positiveInt;
const ipOrEmpty = z.string().refine((v) => v === '' || isIP(v) !== 0, 'must be an IP address or empty');
/** A CIDR block or a single address; shared with the partners file. */
export const cidr = z.string().refine((v) => {
  const [addr, bits, ...rest] = v.split('/');
  if (rest.length > 0 || addr === undefined || isIP(addr) === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (isIP(addr) === 4 ? 32 : 128);
}, 'must be a CIDR such as 203.0.113.0/24 or a single address');

function section<T extends z.ZodRawShape>(shape: T) {
  // prefault parses {} through the object so inner defaults apply when the whole section is missing.
  return z.object(shape).strict().prefault({} as never);
}

/** `overwrite` replaces or appends to an existing file; `upload` alone only creates new ones (a drop box). */
/** A named S3-compatible store (Ceph RGW, MinIO, AWS): where a folder's `s3://NAME/...` path sends its requests. */
const s3Location = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be letters, digits, dot, dash or underscore'),
    /** http(s)://host:port of the store; empty: AWS's own endpoint for the region. */
    endpoint: z.string().default(''),
    region: z.string().min(1).default('us-east-1'),
    accessKeyId: z.string().min(1),
    secretAccessKey: z.string().min(1),
    /** Bucket in the path (http://host/bucket/key): what Ceph RGW and MinIO expect without wildcard DNS. */
    forcePathStyle: z.boolean().default(true),
  })
  .strict();

export const permissionNames = ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir'] as const;
export type Permission = (typeof permissionNames)[number];

export const configSchema = z
  .object({
    listen: section({
      /** Address of the control listener; 0.0.0.0 or :: for all interfaces (then set pasv.externalAddress behind NAT). */
      host: z.string().min(1).default('127.0.0.1'),
      /** Control port (explicit FTPS: clients send AUTH TLS on it). */
      port: port.default(2121),
      /** Text after 220 in the greeting; never the software version. */
      banner: z.string().default('ftpsd ready'),
    }),
    implicit: section({
      /**
       * A second control listener where TLS starts at connect (implicit FTPS, `ftps://` in curl and lftp), for
       * clients that cannot send AUTH TLS. Same session binding, passive ports, limits, bans and audit as listen.port.
       */
      enabled: z.boolean().default(false),
      /** Address of the implicit FTPS listener. */
      host: z.string().min(1).default('127.0.0.1'),
      /** Implicit FTPS port; 990 is the registered one (needs root or CAP_NET_BIND_SERVICE), 9990 is unprivileged. */
      port: port.default(9990),
    }),
    pasv: section({
      /** First port of the passive range; open minPort..maxPort in the firewall. */
      minPort: port.default(50000),
      /** Last port of the passive range; each running transfer holds one port. */
      maxPort: port.default(50100),
      /** Address advertised in 227 replies (ForcePasvIP); empty: the control connection's local address. */
      externalAddress: ipOrEmpty.default(''),
      /** Clients from these networks are given another address (for example the LAN address behind NAT). */
      addressOverrides: z.array(z.object({ cidr, address: z.string().refine((v) => isIP(v) === 4, 'must be an IPv4 address') }).strict()).default([]),
      /** How long a passive listener waits for its one connection. */
      acceptTimeoutMs: ms.default(30_000),
      /**
       * A passive listener whose transfer command has not come this long after PASV/EPSV is closed and its port given
       * back (a session holding a port it does not use). Shorter than acceptTimeoutMs.
       */
      idleListenerTimeoutMs: ms.default(10_000),
      /** Passive listeners open at once for one user, over all its sessions; more get 425. 0: a quarter of the range. */
      maxListenersPerUser: nonNegativeInt.default(0),
      /** Passive listeners open at once for one client address; more get 425. 0: a quarter of the range. */
      maxListenersPerAddress: nonNegativeInt.default(0),
      /** EPSV (RFC 2428) answered. Off for nodes behind a balancer that advertise their own externalAddress: EPSV
       *  names only a port, so the client would connect to the balancer; with 502 clients fall back to PASV. */
      epsv: z.boolean().default(true),
    }),
    tls: section({
      /** PEM certificate chain (leaf first); empty with keyFile empty: a self-signed certificate in selfSignedDir. */
      certFile: z.string().default(''),
      /** PEM private key of certFile. */
      keyFile: z.string().default(''),
      /** Oldest TLS version accepted on control and data connections. */
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
      /**
       * OpenSSL cipher string for control and data connections (TLS 1.2 suites and TLS_ 1.3 suites). The default is
       * Mozilla's "intermediate": ECDHE with AES-GCM or ChaCha20-Poly1305 only, so every session has forward secrecy.
       * Widen it only for a partner that cannot cope; leaving out every TLS_ suite turns TLS 1.3 off.
       */
      ciphers: z.string().min(1).default(
        'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' +
          'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:' +
          'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
      ),
      /** USER/PASS are refused (530) until AUTH TLS succeeded. */
      requireForLogin: z.boolean().default(true),
      /** Data connections must be TLS (PROT P); PROT C is refused with 534. */
      requireForData: z.boolean().default(true),
      /** A data connection must resume its own control connection's TLS session (425 otherwise): stops port hijacking. */
      requireDataSessionReuse: z.boolean().default(true),
      /** Time allowed for a TLS handshake on the control or a data connection (from the connect on a passive port). */
      handshakeTimeoutMs: ms.default(10_000),
      /** Lifetime of TLS sessions and tickets; must cover the longest control session so data connections can resume. */
      sessionTimeoutSeconds: positiveInt.default(86_400),
      /** A data connection that resumed the ticket of a sibling session (same address) still logging in waits this
       *  long for that login to complete as the same user; otherwise it is refused. */
      siblingLoginWaitMs: ms.default(5_000),
      /** An ended session's tickets still open data connections of its siblings (same user and address) for this
       *  long: rclone's shared session cache outlives its connections. */
      siblingTicketRetentionMs: nonNegativeInt.default(600_000),
      /** Directory for the generated self-signed certificate when certFile/keyFile are empty. */
      selfSignedDir: z.string().default('certs'),
      /** Hostnames put in the generated self-signed certificate. */
      selfSignedNames: z.array(z.string()).default(['localhost', '127.0.0.1', '::1']),
      /** How often certFile/keyFile are checked for a change on disk (certbot renewals). 0 disables. */
      watchIntervalMs: nonNegativeInt.default(60_000),
    }),
    users: section({
      /** Users file of earlier versions (argon2id hashes, homes, permissions): imported into the store once, at first start. */
      file: z.string().default('config/users.yaml'),
      /** Home directory given to the demo user created on first start. */
      demoHome: z.string().default('data/demo'),
    }),
    store: section({
      /** The embedded SQLite database (created at first start); used when url is empty. */
      path: z.string().default('data/ftpsd.db'),
      /** postgres://USER:PASSWORD@HOST:PORT/DB: one PostgreSQL store shared by several nodes; empty: the SQLite file. */
      url: z.string().refine((v) => v === '' || /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL or empty').default(''),
      /** PostgreSQL connections each process keeps at most. */
      maxConnections: positiveInt.default(10),
      /** How often a running server picks up changes made by the CLI or another node (disabled users, bans, audit). */
      pollIntervalMs: ms.default(1_000),
    }),
    housekeeping: section({
      /** How often retention, idle-account and lapsed-exception checks run. */
      intervalMs: ms.default(3_600_000),
      /** Hidden partial uploads kept for REST are deleted once they are this old. */
      partialUploadMaxAgeMs: ms.default(86_400_000),
    }),
    events: section({
      /** This node's name in event payloads ("node"); empty: the host name. */
      node: z.string().default(''),
      /** How often each node looks for due deliveries (retries, other nodes' events); its own are sent at once. */
      pollIntervalMs: ms.default(1_000),
      /** Deliveries claimed at a time, and run at once, per node. */
      concurrency: positiveInt.default(4),
      /** A claimed delivery is this node's for this long; a node that dies leaves it to another after it. Longer
       *  than the slowest action's timeout. */
      leaseMs: ms.default(120_000),
      /** Attempts before a delivery becomes a dead letter (`ftpsd events list --failed`, `ftpsd events retry`). */
      maxAttempts: positiveInt.default(12),
      /** Wait after the first failed attempt; it doubles with each further one, up to retryMaxMs. With the defaults a
       *  receiver may be down for more than three hours and still get everything. */
      retryMinMs: ms.default(5_000),
      retryMaxMs: ms.default(3_600_000),
      /** A webhook that has not answered in this long failed (an action's own timeoutMs replaces it). */
      webhookTimeoutMs: ms.default(10_000),
      /** A command still running after this long is killed and failed (an action's own timeoutMs replaces it). */
      commandTimeoutMs: ms.default(30_000),
      /** Command output kept for the log, per stream. */
      commandOutputMaxBytes: positiveInt.default(4_096),
      /** A pre-commit check (rules on upload_check) that has not answered in this long gets checkTimeoutResult. */
      checkTimeoutMs: ms.default(30_000),
      /** What a check that times out or fails to run decides: refuse (451, the client may try again) or accept. */
      checkTimeoutResult: z.enum(['refuse', 'accept']).default('refuse'),
      /** Uploads a check refused are moved here (with a .json note of why); empty: they are deleted. */
      quarantineDir: z.string().default(''),
      /** Delivered events are removed from the store after this long. */
      keepDeliveredMs: ms.default(7 * 86_400_000),
    }),
    log: section({
      /** pino log level of the JSON log on standard output. */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Audit events go to this append-only, hash-chained file; empty: they go to the main log only. */
      auditFile: z.string().default(''),
      /** Key for periodic HMAC checkpoints in the audit file; kept outside the log. Empty: created beside the users file. */
      auditHmacKeyFile: z.string().default(''),
      /** An HMAC checkpoint record follows at most this many records. */
      auditCheckpointEvery: positiveInt.default(100),
      /** The audit file is rotated at this size; the hash chain continues in the next file. */
      auditRotateBytes: positiveInt.default(64 * 1024 * 1024),
      /** Refused commands logged in full per session; beyond, they are counted in a periodic summary line. */
      refusalsPerSession: nonNegativeInt.default(20),
      /** At most one summary line of refused commands not logged per session this often (and one at its end). */
      refusalSummaryIntervalMs: ms.default(60_000),
    }),
    limits: section({
      /** Longest command line; a longer one gets 500 and is discarded without buffering it. */
      maxLineBytes: z.number().int().min(512).default(4096),
      /** Commands a client may send ahead of our replies before we stop reading from it. */
      maxPipelinedCommands: positiveInt.default(32),
      /** Control connections in total; more get 421 at connect. */
      maxSessions: positiveInt.default(500),
      /** Control connections from one address; more get 421 at connect. */
      maxSessionsPerIp: positiveInt.default(20),
      /**
       * Control connections not logged in yet, in total: logged-in sessions keep the rest of maxSessions. When full, a
       * newcomer displaces the oldest waiting connection of the address holding the most, or gets 421.
       */
      maxUnauthenticatedSessions: positiveInt.default(100),
      /** Logged-in sessions of one user; more get 530 at PASS. */
      maxLoginsPerUser: positiveInt.default(20),
      /** Time from connect to a successful login; then 421 and close. */
      loginTimeoutMs: ms.default(60_000),
      /** The login time of a connection made while more than half of maxUnauthenticatedSessions are taken. */
      loginTimeoutUnderPressureMs: ms.default(10_000),
      /** Time without a command (while no transfer runs); then 421 and close. */
      idleTimeoutMs: ms.default(900_000),
      /** A transfer that moves no byte for this long is aborted with 426. */
      stalledTransferTimeoutMs: ms.default(120_000),
      /** After a download is sent, how long the client may take to close the data connection before it is cut. */
      dataCloseTimeoutMs: ms.default(10_000),
      /** Failed PASS attempts on one connection before it is closed with 421. */
      maxFailedLoginsPerSession: positiveInt.default(3),
      /** Delay before answering a failed login with 530. */
      failedLoginDelayMs: nonNegativeInt.default(1_000),
      /** argon2 shares libuv's threadpool with file I/O; this many verifications run at once, the rest queue. */
      passwordHashConcurrency: positiveInt.default(2),
      passwordHashQueueMax: positiveInt.default(200),
      /** Places of that queue only logins from an address where the user logged in before may take; they also go first. */
      passwordHashReservedQueue: nonNegativeInt.default(50),
      /** Failed logins on one user name (from any addresses) within accountFailureWindowMs that throttle the name. */
      accountFailuresBeforeThrottle: positiveInt.default(10),
      /** A throttled name gets one password check at a time from addresses where it never logged in; others 421. */
      accountFailureWindowMs: ms.default(300_000),
      /** Read and write buffer for file transfers; 1 MiB doubles throughput over the 64 KiB stream default. */
      transferChunkBytes: positiveInt.default(1024 * 1024),
      /**
       * Worker threads that compute SHA-256 digests (of uploads as they are stored, and for HASH). One hashes about
       * 1.4 GB/s here; add one per further GB/s of upload traffic you expect.
       */
      digestWorkers: positiveInt.default(1),
      /** Per-transfer upload rate limit in bytes per second; 0 means unlimited. A user's own value replaces it. */
      uploadBytesPerSecond: nonNegativeInt.default(0),
      /** Per-transfer download rate limit in bytes per second; 0 means unlimited. A user's own value replaces it. */
      downloadBytesPerSecond: nonNegativeInt.default(0),
      /** Lines a multi-line listing over the control channel (STAT path) may hold. */
      maxStatListEntries: positiveInt.default(10_000),
      /** Longest client software name kept from CLNT (for logs and audit); the rest is cut off. */
      maxClientNameChars: positiveInt.default(128),
    }),
    storage: section({
      /** Uploads go to a hidden temporary name and are renamed into place only when complete. */
      atomicUploads: z.boolean().default(true),
      /** An upload is fsync'ed (file, then directory) before 226 reports it stored: a power cut cannot lose it. */
      fsyncOnCommit: z.boolean().default(true),
      /**
       * A file of up to this many bytes is read (RETR) or written (STOR, the bytes an upload holds when it ends) with one
       * call on the event loop instead of a trip through the thread pool, which costs more CPU than the call itself. The
       * call blocks every session for as long as the disk takes: 0 on network file systems (see the admin guide).
       */
      syncIoMaxBytes: nonNegativeInt.default(64 * 1024),
      /** Longest client path in UTF-8 bytes (553 beyond). */
      maxPathBytes: positiveInt.default(4096),
      /** Longest single file name in UTF-8 bytes (553 beyond). */
      maxNameBytes: positiveInt.default(255),
      /**
       * Directories of up to this many entries are listed (LIST, NLST, MLSD, STAT) sorted by name; larger ones are
       * streamed in directory order, so a listing's memory stays bounded whatever the directory size. 0: never sort.
       */
      listingSortMaxEntries: nonNegativeInt.default(10_000),
      s3: section({
        /**
         * S3-compatible stores a folder may live on (`path: s3://NAME/BUCKET/PREFIX` in the partners file), each with
         * its endpoint and keys, so secrets stay in this file and out of the store.
         */
        locations: z.array(s3Location).default([]),
        /** An S3 request (one part, one listing page, one HEAD) that takes longer fails; the SDK may retry it. */
        requestTimeoutMs: ms.default(30_000),
        /** Time to open a connection to the S3 endpoint. */
        connectTimeoutMs: ms.default(5_000),
        /** Attempts per S3 request (the SDK retries throttling and network errors with backoff). */
        maxAttempts: positiveInt.default(3),
        /** Size of each multipart upload part (5 MiB is S3's least); a session buffers up to partConcurrency + 1 of them. */
        partBytes: z.number().int().min(5 * 1024 * 1024).max(5 * 1024 * 1024 * 1024).default(8 * 1024 * 1024),
        /** Parts of one upload sent at once. */
        partConcurrency: positiveInt.default(2),
        /** Keys per ListObjectsV2 page (S3 answers at most 1000); listings are streamed page by page. */
        listPageSize: z.number().int().min(1).max(1000).default(1000),
        /**
         * A directory a session has seen (listed, created, entered, uploaded into) is taken to exist for this long, so
         * an upload into it skips the request that checks it; another node's RMD meanwhile is undone by the upload (the
         * file is stored and its directory shows again). 0: check before every upload.
         */
        dirCacheMs: nonNegativeInt.default(10_000),
        /** Multipart uploads older than this, left behind by a crashed node, are aborted by the sweeper. */
        staleUploadAgeMs: ms.default(86_400_000),
        /** How often every S3 folder is swept for stale multipart uploads; 0 disables the sweeper. */
        sweepIntervalMs: nonNegativeInt.default(3_600_000),
      }),
    }),
    activeMode: section({
      /** PORT/EPRT; off by default: passive with session binding is the safe mode. */
      enabled: z.boolean().default(false),
      /** Time allowed to connect out to the client's PORT/EPRT address. */
      connectTimeoutMs: ms.default(10_000),
    }),
    defender: section({
      enabled: z.boolean().default(true),
      /** Score at which an IP is banned, counted over windowMs. */
      threshold: positiveInt.default(10),
      windowMs: ms.default(300_000),
      banMs: ms.default(900_000),
      /** Each repeat offence multiplies the ban, up to maxBanMs. */
      banMultiplier: z.number().min(1).default(2),
      maxBanMs: ms.default(86_400_000),
      allowList: z.array(cidr).default([]),
      /** Bans file of earlier versions, imported into the store once at first start; empty: bans.json beside the users file. */
      file: z.string().default(''),
      /** Most IPs scored, banned or remembered as offenders at once; the oldest are forgotten first. Bounds memory
       *  against an attacker rotating addresses (an IPv6 /64 alone holds 2^64). */
      maxTrackedIps: positiveInt.default(100_000),
      /** A ban counts towards longer later bans for this long after it was imposed. */
      offenceMemoryMs: ms.default(30 * 86_400_000),
      /** How often expired bans, scores and offence records are dropped from memory. */
      pruneIntervalMs: ms.default(60_000),
      /** Bans are written this long after a change, so a burst of bans costs one write. */
      saveDelayMs: nonNegativeInt.default(1_000),
      /** How often the bans in the store are re-read for changes made by `ftpsd ban` or another node. 0 disables. */
      fileWatchIntervalMs: nonNegativeInt.default(2_000),
      scores: section({
        failedLogin: nonNegativeInt.default(1),
        unknownUser: nonNegativeInt.default(1),
        commandBeforeLogin: nonNegativeInt.default(1),
        loginTimeout: nonNegativeInt.default(1),
        foreignDataConnection: nonNegativeInt.default(3),
        tlsHandshakeFailure: nonNegativeInt.default(1),
        protocolViolation: nonNegativeInt.default(1),
        /** A failed login on the admin listener (API or web admin). */
        adminLoginFailure: nonNegativeInt.default(1),
      }),
    }),
    acme: section({
      enabled: z.boolean().default(false),
      directoryUrl: z.string().url().default('https://acme-v02.api.letsencrypt.org/directory'),
      email: z.string().default(''),
      termsAgreed: z.boolean().default(false),
      domains: z.array(z.string().min(1)).default([]),
      challenges: z.array(z.enum(['http-01', 'tls-alpn-01', 'dns-01'])).min(1).default(['http-01']),
      http01: section({ host: z.string().default('0.0.0.0'), port: port.default(80) }),
      tlsAlpn01: section({ host: z.string().default('0.0.0.0'), port: port.default(443) }),
      dns01: section({
        /** Command run as: HOOK add|remove NAME VALUE. */
        hook: z.string().default(''),
        /** Wait after the hook added the record, for DNS propagation. */
        propagationDelayMs: nonNegativeInt.default(0),
        /** A hook run that takes longer is killed and the challenge fails. */
        hookTimeoutMs: ms.default(60_000),
      }),
      /** Extra CA bundle to trust the ACME directory (a company CA, or a test CA). */
      caFile: z.string().default(''),
      renewBeforeDays: z.number().positive().default(30),
      /** Alternatively renew when this fraction of the lifetime is left (0 disables); the earlier of the two wins. */
      renewBeforeFraction: z.number().min(0).max(1).default(0),
      keyType: z.enum(['ecdsa-p256', 'rsa-2048', 'rsa-3072', 'rsa-4096']).default('ecdsa-p256'),
      eab: section({ keyId: z.string().default(''), hmacKey: z.string().default('') }),
      /** Where the account key and certificates are stored. */
      dir: z.string().default('certs/acme'),
      retryMinMs: ms.default(60_000),
      retryMaxMs: ms.default(6 * 3_600_000),
      /** How often the expiry is checked. */
      checkIntervalMs: ms.default(12 * 3_600_000),
      /** Longest one order may take, from newOrder to the downloaded certificate (challenges and finalization). */
      challengeTimeoutMs: ms.default(300_000),
      /** Polling the CA for a challenge or order status backs off exponentially between these two delays. */
      pollIntervalMinMs: ms.default(1_000),
      pollIntervalMaxMs: ms.default(10_000),
      /** A request to the CA that fails on the network, with 429 or with 5xx is tried again this many times. */
      requestRetries: positiveInt.default(3),
      /** Wait before such a retry, multiplied by the attempt number unless the CA sends Retry-After. */
      requestRetryDelayMs: ms.default(5_000),
    }),
    admin: section({
      /** The HTTPS admin listener: REST API under /api/v1 and the web admin, on the FTPS certificate. */
      enabled: z.boolean().default(true),
      /** Keep it on loopback or a management network. */
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(8443),
      /** A login token (API or web admin) unused for this long expires. */
      tokenIdleTimeoutMs: ms.default(900_000),
      /** A login token expires this long after the login, however much it is used. */
      tokenMaxAgeMs: ms.default(28_800_000),
      /** Largest request body; a larger one gets 413 before it is read. */
      bodyLimitBytes: positiveInt.default(262_144),
      /** Delay before a failed admin login is answered. */
      failedLoginDelayMs: nonNegativeInt.default(1_000),
      /** Completed transfers kept in memory for the dashboard. */
      recentTransfers: positiveInt.default(50),
      /** Most records one audit search returns (newest first). */
      auditSearchMaxResults: positiveInt.default(1_000),
    }),
    metrics: section({
      enabled: z.boolean().default(false),
      host: z.string().default('127.0.0.1'),
      port: port.default(9121),
    }),
    proxyProtocol: section({
      /** Load balancers (HAProxy send-proxy / send-proxy-v2) allowed to name the client's address in a PROXY header
       *  (v1 or v2) on the control port. A connection from these networks must send one; a header from anywhere else
       *  is refused. Empty: PROXY protocol off. */
      trustedCidrs: z.array(cidr).default([]),
      /** A trusted balancer's connection without a complete header within this time is closed. */
      headerTimeoutMs: ms.default(5_000),
      /** The same on the passive ports, for a balancer that forwards each node's passive range to it (with
       *  send-proxy-v2): the data connection's address check then compares the client named in the header. Off when
       *  data connections go straight to the node. */
      passive: z.boolean().default(false),
    }),
    cluster: section({
      /** This node's name among several sharing one PostgreSQL store (session counts, audit file, ACME lock);
       *  empty: the host name. Letters, digits, dot, dash and underscore. */
      nodeId: z.string().regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, ".", "-" and "_" only').default(''),
      /** With a PostgreSQL store, how often a node refreshes the heartbeat of its logged-in sessions there. */
      heartbeatIntervalMs: ms.default(5_000),
      /** A session whose node has not refreshed it for this long stops counting against the user's session cap (the
       *  node died). Several heartbeat intervals. */
      sessionExpiryMs: ms.default(30_000),
    }),
    shutdown: section({
      /** SIGTERM lets running transfers finish for at most this long. */
      graceMs: ms.default(30_000),
    }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const s3Names = c.storage.s3.locations.map((l) => l.name);
    s3Names.forEach((n, i) => {
      if (s3Names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'locations', i, 'name'], message: `"${n}" is named twice` });
    });
    if (c.pasv.minPort > c.pasv.maxPort) {
      ctx.addIssue({ code: 'custom', path: ['pasv', 'maxPort'], message: 'must be greater than or equal to pasv.minPort' });
    }
    if (c.implicit.enabled && c.implicit.port !== 0 && c.implicit.port === c.listen.port && c.implicit.host === c.listen.host) {
      ctx.addIssue({ code: 'custom', path: ['implicit', 'port'], message: 'must differ from listen.port: one port cannot speak both explicit and implicit FTPS' });
    }
    if ((c.tls.certFile === '') !== (c.tls.keyFile === '')) {
      ctx.addIssue({ code: 'custom', path: ['tls', c.tls.certFile === '' ? 'certFile' : 'keyFile'], message: 'tls.certFile and tls.keyFile must be set together' });
    }
    if (c.acme.enabled) {
      if (c.acme.domains.length === 0) ctx.addIssue({ code: 'custom', path: ['acme', 'domains'], message: 'needs at least one domain when acme.enabled' });
      if (!c.acme.termsAgreed) ctx.addIssue({ code: 'custom', path: ['acme', 'termsAgreed'], message: "must be true: the CA's terms of service have to be accepted" });
      if (c.acme.challenges.includes('dns-01') && c.acme.dns01.hook === '' && c.acme.challenges.length === 1) {
        ctx.addIssue({ code: 'custom', path: ['acme', 'dns01', 'hook'], message: 'is required for the dns-01 challenge' });
      }
      if (c.acme.domains.some((d) => d.startsWith('*.')) && !c.acme.challenges.includes('dns-01')) {
        ctx.addIssue({ code: 'custom', path: ['acme', 'challenges'], message: 'wildcard domains need dns-01' });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export function defaultConfig(): Config {
  return configSchema.parse({});
}
