// The desk's notices ("Assigned to Dana", "Conversation closed") in the reader's language.
// The engine stores them in English and names them in the message's metadata (`notice`
// and its parameters, see chat-core's Notice); a notice without that metadata (written
// by an older server) or of a kind not in the table shows its stored body.
import { t } from './i18n.js';

function party(md, side) {
  const kind = md[`notice.${side}`];
  return kind === 'agent' ? md[`notice.${side}_name`] || '' : t(`party.${kind}`);
}

/** The text to show for a system message `m`. */
export function noticeText(m) {
  const md = m.metadata || {};
  const kind = md.notice;
  if (!kind) return m.body;
  const key = kind === 'queued' && md['notice.reason'] ? 'notice.queued_reason' : `notice.${kind}`;
  const text = t(key, {
    name: md['notice.name'], reason: md['notice.reason'], minutes: md['notice.minutes'],
    from: kind === 'transferred' ? party(md, 'from') : '', to: kind === 'transferred' ? party(md, 'to') : '',
  });
  return text === key ? m.body : text;
}
