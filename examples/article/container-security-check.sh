#!/bin/bash
# container-security-check.sh
# (the article's script, as printed: `pyrunc audit` makes each check from the host, see
# ARTICLE_CHECKS in pyrunc/teach/audit.py and docs/TEACHING.md section 6)

CONTAINER_ID=$1

if [ -z "$CONTAINER_ID" ]; then
    echo "Usage: $0 <container-id>"
    exit 1
fi

echo "=== Container Security Check for $CONTAINER_ID ==="

# 检查运行用户
echo "1. Checking running user..."
USER_INFO=$(docker exec $CONTAINER_ID id)
echo "Running as: $USER_INFO"

if [[ $USER_INFO == *"uid=0"* ]]; then
    echo "⚠️  WARNING: Container running as root"
else
    echo "✅ Container running as non-root user"
fi

# 检查 Capabilities
echo -e "\n2. Checking capabilities..."
CAPS=$(docker exec $CONTAINER_ID grep Cap /proc/1/status)
echo "$CAPS"

# 检查 Seccomp
echo -e "\n3. Checking seccomp..."
SECCOMP=$(docker exec $CONTAINER_ID grep Seccomp /proc/1/status)
echo "$SECCOMP"

if [[ $SECCOMP == *"Seccomp:	0"* ]]; then
    echo "⚠️  WARNING: Seccomp disabled"
else
    echo "✅ Seccomp enabled"
fi

# 检查命名空间
echo -e "\n4. Checking namespaces..."
docker exec $CONTAINER_ID ls -la /proc/1/ns/

# 检查挂载点
echo -e "\n5. Checking mount points..."
docker exec $CONTAINER_ID mount | grep -E "(proc|sys|dev)"

# 检查网络配置
echo -e "\n6. Checking network configuration..."
docker exec $CONTAINER_ID ip addr show

echo -e "\n=== Security Check Complete ==="
