"""Alerts on stale or corrupted backups: the user guide's 监控和告警, as
the guide writes it.

    pip install milvus-backup-sdk schedule
    python backup_monitor.py

Added to the guide's code, and nothing else: the imports it leaves out and
the ``client`` its usage lines expect (``BackupClient()`` takes its
connection settings from the environment: ``MILVUS_HOST``,
``MILVUS_PORT``, ``MILVUS_BACKUP_HOST``, ``MILVUS_BACKUP_PORT``). Like the
guide, it registers an hourly check; run ``schedule.run_pending()`` in a
loop to have it run.
"""

from datetime import datetime

import schedule

from milvus_backup import BackupClient

client = BackupClient()

class BackupMonitor:
    """备份监控"""

    def __init__(self, client):
        self.client = client

    def check_backup_health(self):
        """检查备份健康状态"""
        backups = self.client.list_backups()

        # 检查最近备份时间
        if backups:
            latest_backup = max(backups, key=lambda x: x['created_at'])
            time_since_last = datetime.now().timestamp() - latest_backup['created_at']

            if time_since_last > 86400:  # 24 小时
                self.alert("No backup in last 24 hours!")

        # 检查备份完整性
        for backup in backups:
            if not self.client.verify_backup(backup['name']):
                self.alert(f"Backup {backup['name']} is corrupted!")

    def alert(self, message):
        """发送告警"""
        print(f"🚨 ALERT: {message}")
        # 发送邮件、Slack 通知等

# 使用示例
monitor = BackupMonitor(client)
schedule.every().hour.do(monitor.check_backup_health)
