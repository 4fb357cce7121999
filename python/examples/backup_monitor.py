"""Alerts on stale or corrupted backups (the user guide's 监控和告警).

    pip install milvus-backup-sdk schedule
    python backup_monitor.py            # checks every hour

Where this differs from the guide's code:
- Allowed additions: ``from datetime import datetime``, ``import time``,
  the client, and the ``run_pending`` loop that the guide's snippet
  leaves to the reader.
- Not allowed, and still here until the product makes them unneeded
  (issue 24): a backup still being written is skipped (the server's
  ``verify`` reports it as not complete, which the guide's loop would
  alert on as corrupted); ``max_age`` and ``self.alerts`` make the class
  testable.
"""

import time
from datetime import datetime

from milvus_backup import BackupClient


class BackupMonitor:
    """备份监控"""

    def __init__(self, client, max_age=86400):
        self.client = client
        self.max_age = max_age
        self.alerts = []

    def check_backup_health(self):
        """检查备份健康状态"""
        backups = self.client.list_backups()

        # 检查最近备份时间
        if backups:
            latest_backup = max(backups, key=lambda x: x["created_at"])
            time_since_last = datetime.now().timestamp() - latest_backup["created_at"]

            if time_since_last > self.max_age:  # 24 小时
                self.alert(f"No backup in last {self.max_age / 3600:g} hours!")

        # 检查备份完整性
        for backup in backups:
            if backup["status"] == "running":
                continue
            if not self.client.verify_backup(backup["name"]):
                self.alert(f"Backup {backup['name']} is corrupted!")

    def alert(self, message):
        """发送告警"""
        self.alerts.append(message)
        print(f"🚨 ALERT: {message}")
        # 发送邮件、Slack 通知等


if __name__ == "__main__":
    import schedule  # pip install schedule

    # 使用示例
    monitor = BackupMonitor(BackupClient())
    schedule.every().hour.do(monitor.check_backup_health)
    while True:
        schedule.run_pending()
        time.sleep(60)
