import { scanDisks } from '../../disks';
import { parseCommandArgs } from '../args';
import type { Command } from '../command';

export const disks: Command = {
  name: 'disks',
  summary: "list this machine's disks and whether each may be shared",
  help: `usage: spindle disks [--json]

Lists local disks, safe ones first, with the reason a disk can't be shared
read-write (system disk, mounted here, write-protected, ...), and mounted
volumes with free space.

  --json      print the report as one JSON object
  -h, --help  show this help`,
  async run(argv) {
    const { values } = parseCommandArgs('disks', argv, { json: { type: 'boolean' } });
    const report = await scanDisks();
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return 0;
    }
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    for (const d of report.disks) {
      const why = d.constraints.map((c) => c.message).join('; ');
      process.stdout.write(`${d.path.padEnd(16)} ${gib(d.sizeBytes).padStart(10)}  ${d.share.padEnd(10)}  ${d.model ?? ''}${why ? `  — ${why}` : ''}\n`);
    }
    for (const v of report.volumes) {
      process.stdout.write(`volume ${v.mountpoint.padEnd(20)} ${gib(v.freeBytes)} free of ${gib(v.sizeBytes)}\n`);
    }
    return 0;
  },
};
