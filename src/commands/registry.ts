import type { CommandSpec } from './command-spec.js';
import { ABOR } from './abor.js';
import { ALLO } from './allo.js';
import { APPE } from './appe.js';
import { AUTH } from './auth.js';
import { AVBL } from './avbl.js';
import { CCC } from './ccc.js';
import { CDUP } from './cdup.js';
import { CLNT } from './clnt.js';
import { CWD } from './cwd.js';
import { DELE } from './dele.js';
import { EPSV } from './epsv.js';
import { FEAT } from './feat.js';
import { HASH } from './hash.js';
import { HELP } from './help.js';
import { HOST } from './host.js';
import { LIST } from './list.js';
import { MDTM } from './mdtm.js';
import { MFMT } from './mfmt.js';
import { MKD } from './mkd.js';
import { MLSD } from './mlsd.js';
import { MLST } from './mlst.js';
import { MODE } from './mode.js';
import { NLST } from './nlst.js';
import { NOOP } from './noop.js';
import { OPTS } from './opts.js';
import { PASS } from './pass.js';
import { PASV } from './pasv.js';
import { PBSZ } from './pbsz.js';
import { EPRT, PORT } from './port.js';
import { PROT } from './prot.js';
import { PWD } from './pwd.js';
import { QUIT } from './quit.js';
import { REIN } from './rein.js';
import { REST } from './rest.js';
import { RETR } from './retr.js';
import { RMD } from './rmd.js';
import { RNFR } from './rnfr.js';
import { RNTO } from './rnto.js';
import { SIZE } from './size.js';
import { STAT } from './stat.js';
import { STOR } from './stor.js';
import { STOU } from './stou.js';
import { STRU } from './stru.js';
import { SYST } from './syst.js';
import { TYPE } from './type.js';
import { USER } from './user.js';

/** Every verb the server answers; one file each in this folder. FEAT and HELP are generated from this list. */
export const ALL_COMMANDS: readonly CommandSpec[] = [
  ABOR, ALLO, APPE, AUTH, AVBL, CCC, CDUP, CLNT, CWD, DELE, EPRT, EPSV, FEAT, HASH, HELP, HOST, LIST, MDTM, MFMT, MKD,
  MLSD, MLST, MODE, NLST, NOOP, OPTS, PASS, PASV, PBSZ, PORT, PROT, PWD, QUIT, REIN, REST, RETR, RMD, RNFR, RNTO, SIZE,
  STAT, STOR, STOU, STRU, SYST, TYPE, USER,
];

export function buildRegistry(commands: readonly CommandSpec[] = ALL_COMMANDS): ReadonlyMap<string, CommandSpec> {
  const map = new Map<string, CommandSpec>();
  for (const spec of commands) {
    map.set(spec.verb, spec);
    for (const alias of spec.aliases ?? []) map.set(alias, spec);
  }
  return map;
}
