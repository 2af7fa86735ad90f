// Wizard steps as plain data: the placeholder screens show them now, and the
// wizards being built will walk them.

export interface WizardStep {
  id: string;
  title: string;
  description: string;
}

export const shareSteps: WizardStep[] = [
  {
    id: 'source',
    title: 'Pick a disk or an image',
    description:
      'Choose a whole disk that Spindle marks “Can share”, or create a disk image file on a volume with free space. Images are sparse: they only use space as data is written.',
  },
  {
    id: 'access',
    title: 'Choose who may connect',
    description:
      'Allow one computer by its initiator name — the safe default, because two computers writing to one ordinary file system corrupt it. Add a CHAP password if you like. When an unknown computer knocks, Spindle shows it and offers “Allow”.',
  },
  {
    id: 'done',
    title: 'Done',
    description:
      'Spindle starts serving right away and shows copyable commands for Windows, Linux and macOS. Shares come back by themselves when Spindle restarts.',
  },
];

export const connectSteps: WizardStep[] = [
  {
    id: 'find',
    title: 'Find targets on your network',
    description:
      'Type the address of the computer that shares the disk, such as 192.168.1.10. Spindle asks it which targets it offers this computer (SendTargets); save the ones you want.',
  },
  {
    id: 'login',
    title: 'Log in',
    description:
      'Pick a target and its LUN. If the target asks for CHAP, enter the user name and secret; they are stored locally and never shown again.',
  },
  {
    id: 'attach',
    title: 'Use it like a local disk',
    description:
      'Attach the LUN as a block device or mount its file system in a folder. Saved connections are restored when Spindle starts.',
  },
];
