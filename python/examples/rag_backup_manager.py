"""Scheduled backups of a RAG knowledge base: the user guide's 场景1
(知识库定期备份), as the guide writes it.

    pip install milvus-backup-sdk schedule
    python rag_backup_manager.py        # backs up every day at 02:00

Added to the guide's code, and nothing else: ``import os`` and
``import time`` (the guide's loop sleeps without importing it), and the
connection settings read from the environment (``MILVUS_HOST``,
``MILVUS_PORT``, ``MILVUS_BACKUP_HOST``, ``MILVUS_BACKUP_PORT``), with
the guide's values as defaults.
"""

import os
import time

from milvus_backup import BackupClient
from datetime import datetime
import schedule

class RAGBackupManager:
    """RAG 知识库备份管理器"""

    def __init__(self):
        self.client = BackupClient(
            milvus_host=os.environ.get("MILVUS_HOST", "localhost"),
            milvus_port=int(os.environ.get("MILVUS_PORT", 19530)),
            backup_host=os.environ.get("MILVUS_BACKUP_HOST", "localhost"),
            backup_port=int(os.environ.get("MILVUS_BACKUP_PORT", 8080))
        )

    def backup_knowledge_base(self):
        """备份知识库"""
        # 生成备份名称
        backup_name = f"rag_kb_{datetime.now().strftime('%Y%m%d_%H%M%S')}"

        # 创建备份
        print(f"Creating backup: {backup_name}")
        backup_id = self.client.create_backup(
            backup_name=backup_name,
            collections=["documents", "embeddings"],
            compression=True
        )

        # 验证备份
        if self.client.verify_backup(backup_name):
            print(f"✅ Backup {backup_name} created and verified")
        else:
            print(f"❌ Backup {backup_name} verification failed")

        # 清理旧备份（保留最近 7 天）
        self.cleanup_old_backups(days=7)

    def cleanup_old_backups(self, days=7):
        """清理旧备份"""
        backups = self.client.list_backups()
        cutoff_time = datetime.now().timestamp() - (days * 86400)

        for backup in backups:
            if backup['created_at'] < cutoff_time:
                print(f"Deleting old backup: {backup['name']}")
                self.client.delete_backup(backup['name'])

# 使用示例
manager = RAGBackupManager()

# 每天凌晨 2 点备份
schedule.every().day.at("02:00").do(manager.backup_knowledge_base)

# 运行调度器
while True:
    schedule.run_pending()
    time.sleep(60)
