import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { IClaim, IJob, IPaperRuns, IRun, IRunsReply, fileURL, postAPI, requestAPI } from './api';

const POLL_MS = 2000; // while a reproduction runs: progress every 2 s
const VERDICTS: IClaim['verdict'][] = ['holds', 'inconclusive', 'does not hold'];

/** Build an element with a class and optional text. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

function duration(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  const total = Math.round(seconds);
  return total < 60 ? `${total} s` : `${Math.floor(total / 60)} min ${total % 60} s`;
}

function verdictClass(verdict: string): string {
  return `qkit-verdict qkit-verdict-${verdict.replace(/ /g, '-')}`;
}

/**
 * The qkit side panel: each paper with the verdicts of its latest run, links to the executed notebook and its
 * HTML, and a button that runs the quick reproduction on the server.
 */
export class QkitPanel extends Widget {
  constructor(commands: CommandRegistry) {
    super();
    this._commands = commands;
    this.addClass('qkit-panel');
    const header = el('div', 'qkit-panel-header');
    header.appendChild(el('h2', '', 'qkit reproductions'));
    const refresh = el('button', 'jp-Button jp-mod-styled qkit-refresh', 'Refresh');
    refresh.title = 'Read the runs folder again';
    refresh.onclick = () => void this.refresh();
    header.appendChild(refresh);
    this._where = el('div', 'qkit-runs-folder');
    this._error = el('div', 'qkit-error');
    this._list = el('div', 'qkit-papers');
    this.node.append(header, this._where, this._error, this._list);
  }

  /** Read the runs folder and the jobs again; poll while a job runs. */
  async refresh(): Promise<void> {
    try {
      const reply = await requestAPI<IRunsReply>('runs');
      this._showError('');
      this._render(reply);
      const running = reply.papers.some(p => p.job && p.job.state === 'running');
      this._schedule(running);
    } catch (error) {
      this._showError(`Could not read the runs: ${(error as Error).message}`);
      this._schedule(false);
    }
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _schedule(running: boolean): void {
    window.clearTimeout(this._timer);
    if (running) {
      this._timer = window.setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  private _showError(message: string): void {
    this._error.textContent = message;
    this._error.style.display = message ? '' : 'none';
  }

  private async _start(paper: string): Promise<void> {
    try {
      await postAPI('jobs', { paper, preset: 'quick' });
      this._showError('');
    } catch (error) {
      this._showError(`Could not start ${paper}: ${(error as Error).message}`);
    }
    await this.refresh();
  }

  private _render(reply: IRunsReply): void {
    this._where.textContent = `Runs folder: ${reply.runs || '.'}/`;
    this._list.replaceChildren(...reply.papers.map(p => this._paper(p)));
  }

  private _paper(paper: IPaperRuns): HTMLElement {
    const box = el('section', 'qkit-paper');
    box.dataset.paper = paper.name;
    box.appendChild(el('h3', 'qkit-paper-label', paper.label));
    box.appendChild(el('div', 'qkit-paper-title', paper.title));
    const running = paper.job !== null && paper.job.state === 'running';
    const button = el('button', 'jp-Button jp-mod-styled jp-mod-accept qkit-run', 'Run quick reproduction');
    button.disabled = running;
    button.title = `qkit reproduce ${paper.name} --preset quick, on the server`;
    button.onclick = () => void this._start(paper.name);
    box.appendChild(button);
    if (paper.job) {
      box.appendChild(this._job(paper.job));
    }
    box.appendChild(paper.latest ? this._run(paper.latest) : el('div', 'qkit-no-run', 'No run yet.'));
    return box;
  }

  private _job(job: IJob): HTMLElement {
    const node = el('div', `qkit-job qkit-job-${job.state}`);
    if (job.state === 'running') {
      const cells = job.progress ? `, cell ${job.progress.done} of ${job.progress.total}` : ', starting';
      node.textContent = `Running${cells} (${duration(job.elapsed_s)})…`;
      if (job.progress && job.progress.total > 0) {
        const bar = el('progress', 'qkit-progress');
        bar.max = job.progress.total;
        bar.value = job.progress.done;
        node.appendChild(bar);
      }
    } else if (job.state === 'failed') {
      node.textContent = `The run failed after ${duration(job.elapsed_s)}: ${job.error ?? ''}`;
      const details = el('details');
      details.appendChild(el('summary', '', 'output'));
      details.appendChild(el('pre', '', job.output.join('\n')));
      node.appendChild(details);
    } else {
      node.textContent = `The run ended after ${duration(job.elapsed_s)}.`;
    }
    return node;
  }

  private _run(run: IRun): HTMLElement {
    const node = el('div', 'qkit-run-result');
    const when = run.started ? run.started.replace('T', ' ').slice(0, 16) : '';
    const took = run.elapsed_s !== null ? `, ${duration(run.elapsed_s)}` : '';
    node.appendChild(el('div', 'qkit-run-meta', `Latest run: ${run.status}${when ? `, ${when}` : ''}${took}`));
    if (run.error) {
      node.appendChild(el('div', 'qkit-error qkit-run-error', run.error));
    }
    if (run.claims.length) {
      node.appendChild(this._counts(run.claims));
      node.appendChild(this._claims(run.claims, 'qkit-claims'));
    }
    if (run.sanity.length) {
      const sanity = el('details', 'qkit-sanity');
      const held = run.sanity.filter(c => c.verdict === 'holds').length;
      sanity.appendChild(el('summary', '', `Sanity checks: ${held} of ${run.sanity.length} hold`));
      sanity.appendChild(this._claims(run.sanity, 'qkit-sanity-list'));
      node.appendChild(sanity);
    }
    const links = el('div', 'qkit-links');
    if (run.notebook) {
      const open = el('a', 'qkit-link-notebook', 'executed notebook');
      open.href = '#';
      open.onclick = event => {
        event.preventDefault();
        void this._commands.execute('docmanager:open', { path: run.notebook });
      };
      links.appendChild(open);
    }
    if (run.html) {
      const html = el('a', 'qkit-link-html', 'HTML');
      html.href = fileURL(run.html);
      html.target = '_blank';
      html.rel = 'noopener';
      links.appendChild(html);
    }
    node.appendChild(links);
    return node;
  }

  private _counts(claims: IClaim[]): HTMLElement {
    const node = el('div', 'qkit-counts');
    for (const verdict of VERDICTS) {
      const n = claims.filter(c => c.verdict === verdict).length;
      if (n) {
        node.appendChild(el('span', verdictClass(verdict), `${n} ${verdict}`));
      }
    }
    return node;
  }

  private _claims(claims: IClaim[], className: string): HTMLElement {
    const list = el('ul', className);
    for (const claim of claims) {
      const item = el('li', 'qkit-claim');
      item.dataset.verdict = claim.verdict;
      item.title = claim.evidence;
      item.appendChild(el('span', verdictClass(claim.verdict), claim.verdict));
      item.appendChild(el('span', 'qkit-claim-text', ` ${claim.id}: ${claim.statement}`));
      list.appendChild(item);
    }
    return list;
  }

  private _commands: CommandRegistry;
  private _where: HTMLElement;
  private _error: HTMLElement;
  private _list: HTMLElement;
  private _timer = 0;
}
