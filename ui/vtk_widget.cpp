#include "vtk_widget.h"

#include <QFile>
#include <QFileInfo>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLExtraFunctions>
#include <QWheelEvent>

#include <algorithm>

#include <vtkCallbackCommand.h>
#include <vtkCamera.h>
#include <vtkCommand.h>
#include <vtkGL2PSExporter.h>
#include <vtkGenericOpenGLRenderWindow.h>
#include <vtkOpenGLFramebufferObject.h>
#include <vtkOpenGLState.h>
#include <vtkPNGWriter.h>
#include <vtkRenderer.h>
#include <vtkWindowToImageFilter.h>

namespace ltlab::ui {

VtkWidget::VtkWidget(QWidget* parent) : QOpenGLWidget(parent) {
    setMouseTracking(true); // hover shows the numbers under the cursor
    window_ = vtkSmartPointer<vtkGenericOpenGLRenderWindow>::New();
    renderer_ = vtkSmartPointer<vtkRenderer>::New();
    renderer_->SetBackground(1.0, 1.0, 1.0);
    window_->AddRenderer(renderer_);
    window_->SetMultiSamples(0);
    // VTK asks the host to make its context current and whether it is current;
    // the widget answers with its own context (paintGL shows the frame).
    auto on_event = vtkSmartPointer<vtkCallbackCommand>::New();
    on_event->SetClientData(this);
    on_event->SetCallback([](vtkObject*, unsigned long id, void* client, void* call) {
        auto* self = static_cast<VtkWidget*>(client);
        switch (id) {
        case vtkCommand::WindowMakeCurrentEvent:
            if (self->context()) self->context()->makeCurrent(self->context()->surface());
            break;
        case vtkCommand::WindowIsCurrentEvent:
            *static_cast<bool*>(call) = self->context() && QOpenGLContext::currentContext() == self->context();
            break;
        default:
            break;
        }
    });
    window_->AddObserver(vtkCommand::WindowMakeCurrentEvent, on_event);
    window_->AddObserver(vtkCommand::WindowIsCurrentEvent, on_event);
}

vtkRenderer* VtkWidget::renderer() const { return renderer_; }

VtkWidget::~VtkWidget() {
    if (initialized_) {
        makeCurrent();
        window_->Finalize();
        doneCurrent();
    }
}

void VtkWidget::initializeGL() {
    window_->SetReadyForRendering(true);
    window_->SetOwnContext(0);
    window_->SetForceMaximumHardwareLineWidth(1);
    window_->OpenGLInitContext();
    initialized_ = true;
}

void VtkWidget::resizeGL(int w, int h) {
    const double dpr = devicePixelRatioF();
    window_->SetSize(static_cast<int>(w * dpr), static_cast<int>(h * dpr));
}

void VtkWidget::paintGL() {
    if (!initialized_) return;
    // Qt leaves its own GL state behind: let VTK re-read what it tracks.
    window_->GetState()->Reset();
    window_->Render();
    ++frames_;
    makeCurrent();
    QOpenGLExtraFunctions* f = context()->extraFunctions();
    const int w = static_cast<int>(width() * devicePixelRatioF()), h = static_cast<int>(height() * devicePixelRatioF());
    f->glBindFramebuffer(GL_DRAW_FRAMEBUFFER, defaultFramebufferObject());
    f->glDisable(GL_SCISSOR_TEST);
    window_->GetState()->vtkglDisable(GL_SCISSOR_TEST);
    int* size = window_->GetRenderFramebuffer()->GetLastSize();
    window_->BlitDisplayFramebuffer(0, 0, 0, size[0], size[1], 0, 0, w, h, GL_COLOR_BUFFER_BIT,
                                   size[0] == w && size[1] == h ? GL_NEAREST : GL_LINEAR); // same size: a plain copy
    f->glBindFramebuffer(GL_FRAMEBUFFER, defaultFramebufferObject());
    f->glViewport(0, 0, w, h);
}

void VtkWidget::resetCamera() {
    renderer_->ResetCamera();
    renderer_->GetActiveCamera()->Zoom(1.25); // ResetCamera fits the bounding sphere: a lot of margin
    update();
}

bool VtkWidget::savePng(const QString& path, int scale) {
    if (!initialized_) return false;
    QFile::remove(path); // success below means this export wrote it
    makeCurrent();
    auto grab = vtkSmartPointer<vtkWindowToImageFilter>::New();
    grab->SetInput(window_);
    grab->SetScale(std::clamp(scale, 1, 8));
    grab->ReadFrontBufferOff();
    grab->Update();
    auto writer = vtkSmartPointer<vtkPNGWriter>::New();
    writer->SetFileName(path.toLocal8Bit().constData());
    writer->SetInputConnection(grab->GetOutputPort());
    writer->Write();
    doneCurrent();
    update();
    return writer->GetErrorCode() == 0 && QFileInfo(path).size() > 0;
}

bool VtkWidget::savePdf(const QString& path, int scale) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (!initialized_ || suffix != "pdf") return false;
    makeCurrent();
    auto exporter = vtkSmartPointer<vtkGL2PSExporter>::New(); // the OpenGL2 implementation, by VTK's factory
    exporter->SetRenderWindow(window_);
    exporter->SetFileFormat(vtkGL2PSExporter::PDF_FILE);
    // GL2PS appends the (lower-case) suffix itself; the file is moved to `path` after.
    const QString prefix = path.left(path.size() - suffix.size() - 1);
    const QString written = prefix + "." + suffix;
    QFile::remove(path);
    QFile::remove(written);
    exporter->SetFilePrefix(prefix.toLocal8Bit().constData());
    exporter->SetCompress(true); // where GL2PS was built with zlib (Debian's is not)
    exporter->Write3DPropsAsRasterImageOn(); // shaded spheres do not survive as vector primitives
    exporter->SetRasterExclusions(nullptr);
    exporter->TextAsPathOff();
    exporter->SetTitle("ltlab");
    const int* size = window_->GetSize();
    const int w = size[0], h = size[1];
    window_->SetSize(w * scale, h * scale);
    exporter->Write();
    window_->SetSize(w, h);
    doneCurrent();
    update();
    if (written != path && !QFile::rename(written, path)) return false;
    return QFileInfo(path).size() > 0;
}

QPointF VtkWidget::toDisplay(const QPoint& pos) const {
    const double dpr = devicePixelRatioF();
    return {pos.x() * dpr, height() * dpr - 1 - pos.y() * dpr};
}

void VtkWidget::mousePressEvent(QMouseEvent* event) { last_mouse_ = press_pos_ = event->pos(); }

void VtkWidget::mouseReleaseEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton && (event->pos() - press_pos_).manhattanLength() <= 3)
        emit clicked(toDisplay(event->pos()));
}

void VtkWidget::mouseMoveEvent(QMouseEvent* event) {
    if (event->buttons() == Qt::NoButton) {
        emit hovered(toDisplay(event->pos()), event->globalPosition().toPoint());
        return;
    }
    if (!(event->buttons() & Qt::LeftButton)) return;
    const QPoint d = event->pos() - last_mouse_;
    last_mouse_ = event->pos();
    vtkCamera* camera = renderer_->GetActiveCamera();
    camera->Azimuth(-0.4 * d.x());
    camera->Elevation(0.4 * d.y());
    camera->OrthogonalizeViewUp();
    renderer_->ResetCameraClippingRange();
    update();
}

void VtkWidget::mouseDoubleClickEvent(QMouseEvent*) { resetCamera(); }

void VtkWidget::wheelEvent(QWheelEvent* event) {
    renderer_->GetActiveCamera()->Dolly(event->angleDelta().y() > 0 ? 1.1 : 1 / 1.1);
    renderer_->ResetCameraClippingRange();
    update();
}

} // namespace ltlab::ui
