import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import { IPaper, postAPI, requestAPI } from './api';
import { QkitPanel } from './panel';

const OPEN_COMMAND = 'qkit:open-reproduction';
const PANEL_COMMAND = 'qkit:show-panel';
const CATEGORY = 'qkit';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="15" width="3" height="6"/><rect x="8" y="11" width="3" height="10"/>
    <rect x="13" y="7" width="3" height="14"/><rect x="18" y="3" width="3" height="18"/>
  </g>
</svg>`;

export const qkitIcon = new LabIcon({ name: 'qkit:icon', svgstr: ICON_SVG });

/**
 * The qkit launcher section (one card per reproduction: a click writes a working copy of the notebook into
 * the folder the file browser shows and opens it) and the qkit side panel (verdicts of the latest runs).
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'qkit-lab:plugin',
  description: 'qkit reproductions in the launcher and a panel with their verdicts.',
  autoStart: true,
  optional: [ILauncher, IDefaultFileBrowser],
  activate: (app: JupyterFrontEnd, launcher: ILauncher | null, browser: IDefaultFileBrowser | null) => {
    const { commands, shell } = app;

    commands.addCommand(OPEN_COMMAND, {
      label: args => (args.label as string) || 'qkit reproduction',
      caption: args => `A working copy of ${args.title ?? args.paper} (the installed notebook stays untouched)`,
      icon: qkitIcon,
      execute: async args => {
        // the folder the file browser shows; the launcher's own folder where there is no file browser
        const dir = browser?.model.path ?? (args.cwd as string | undefined) ?? '';
        try {
          const reply = await postAPI<{ path: string }>('copy', { paper: args.paper, dir });
          await browser?.model.refresh();
          return commands.execute('docmanager:open', { path: reply.path });
        } catch (error) {
          Notification.error(`qkit: could not copy ${args.paper}: ${(error as Error).message}`);
        }
      }
    });

    const panel = new QkitPanel(commands);
    panel.id = 'qkit-panel';
    panel.title.icon = qkitIcon;
    panel.title.caption = 'qkit reproductions';
    shell.add(panel, 'left', { rank: 900 });
    commands.addCommand(PANEL_COMMAND, {
      label: 'Show the qkit reproductions panel',
      execute: () => shell.activateById(panel.id)
    });

    if (launcher) {
      requestAPI<{ papers: IPaper[] }>('papers')
        .then(reply => {
          reply.papers.forEach((paper, rank) => {
            launcher.add({
              command: OPEN_COMMAND,
              args: { paper: paper.name, label: paper.label, title: paper.title },
              category: CATEGORY,
              rank
            });
          });
        })
        .catch(error => {
          Notification.error(`qkit: could not list the reproductions: ${(error as Error).message}`);
        });
    }
  }
};

export default plugin;
