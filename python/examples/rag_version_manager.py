"""Named versions of a RAG knowledge base and rollback: the user guide's
场景2 (知识库版本管理), as the guide writes it.

    python rag_version_manager.py

Added to the guide's code, and nothing else: the imports it leaves out.
``BackupClient()`` takes its connection settings from the environment
(``MILVUS_HOST``, ``MILVUS_PORT``, ``MILVUS_BACKUP_HOST``,
``MILVUS_BACKUP_PORT``; the defaults are localhost, 19530 and 8080).
The rollback replaces the live collections, as the guide's comment says:
the backup is restored under a side name, checked, then swapped in.
"""

from datetime import datetime

from milvus_backup import BackupClient

class RAGVersionManager:
    """RAG 知识库版本管理"""

    def __init__(self):
        self.client = BackupClient()
        self.versions = {}

    def create_version(self, version_name, description=""):
        """创建知识库版本"""
        backup_name = f"rag_version_{version_name}"

        # 创建备份
        backup_id = self.client.create_backup(
            backup_name=backup_name,
            collections=["documents", "embeddings"]
        )

        # 记录版本信息
        self.versions[version_name] = {
            "backup_id": backup_id,
            "description": description,
            "created_at": datetime.now(),
            "backup_name": backup_name
        }

        print(f"✅ Version {version_name} created")

    def rollback_to_version(self, version_name):
        """回滚到指定版本"""
        if version_name not in self.versions:
            raise ValueError(f"Version {version_name} not found")

        version = self.versions[version_name]

        # 恢复备份（覆盖原 Collection）
        self.client.restore_backup(
            backup_name=version["backup_name"],
            collections=["documents", "embeddings"]
        )

        print(f"✅ Rolled back to version {version_name}")

    def list_versions(self):
        """列出所有版本"""
        for name, info in self.versions.items():
            print(f"{name}: {info['description']} ({info['created_at']})")

# 使用示例
manager = RAGVersionManager()

# 创建版本
manager.create_version("v1.0", "Initial knowledge base")

# 更新知识库...

# 创建新版本
manager.create_version("v1.1", "Added new documents")

# 如果有问题，回滚
manager.rollback_to_version("v1.0")
