import type {PreflightReport} from '../sandbox/preflight.js'
import {renderTable} from './table.js'

/** The human form: the environment, the aligned table, then what `up` would apply and what cannot be remedied. */
export function renderPreflight(report: PreflightReport): string {
  const setting = Array.isArray(report.setting) ? `[${report.setting.join(', ')}]` : report.setting
  const env = report.environment
  const lines = [
    `data dir ${report.dataDir} · workarounds: ${setting} · agent: ${report.agent ? 'yes' : 'no'} · network: ${report.networkMode}`,
    renderTable(
      ['', ''],
      [
        ['sandbox', env.sandbox],
        ['user', env.user],
        ['filesystem', env.filesystem],
        ['ptrace', env.ptrace],
        ['seccomp', env.seccomp],
      ],
    )
      .split('\n')
      .slice(1)
      .join('\n'),
    renderTable(
      ['ID', 'FOUND', 'ACTION', 'EVIDENCE'],
      report.rows.map((r) => [r.id, r.timedOut ? 'timeout' : r.found ? 'yes' : 'no', r.action, r.evidence]),
    ),
  ]
  const applied = report.rows.filter((r) => r.action === 'apply')
  lines.push(
    applied.length === 0
      ? 'up would apply no workaround'
      : `up would apply:\n${indent(
          renderTable(
            ['', ''],
            applied.map((r) => [r.id, r.remedy]),
          ),
        )}`,
  )
  const missing = report.rows.filter((r) => r.action === 'none-available')
  if (missing.length > 0)
    lines.push(
      `no remedy here:\n${indent(
        renderTable(
          ['', ''],
          missing.map((r) => [r.id, r.reason]),
        ),
      )}`,
    )
  return lines.join('\n').replace(/\n+$/, '')
}

function indent(table: string): string {
  return table
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => `  ${l}`)
    .join('\n')
}
